import java.util.*;

public class IntervalMerger {
    public static int[][] merge(int[][] intervals) {
        for (int[] iv : intervals) {
            if (iv.length != 2 || iv[0] > iv[1]) throw new IllegalArgumentException("bad interval");
        }
        int[][] sorted = new int[intervals.length][];
        for (int i = 0; i < intervals.length; i++) sorted[i] = intervals[i].clone();
        Arrays.sort(sorted, Comparator.comparingInt(a -> a[0]));
        List<int[]> out = new ArrayList<>();
        for (int[] iv : sorted) {
            if (!out.isEmpty() && iv[0] <= out.get(out.size() - 1)[1]) {
                int[] last = out.get(out.size() - 1);
                last[1] = Math.max(last[1], iv[1]);
            } else {
                out.add(iv);
            }
        }
        return out.toArray(new int[0][]);
    }
}
