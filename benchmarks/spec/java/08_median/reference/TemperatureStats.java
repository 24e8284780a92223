import java.util.Arrays;

public class TemperatureStats {
    public static double median(double[] values) {
        if (values == null || values.length == 0) throw new IllegalArgumentException("no values");
        double[] copy = values.clone();
        Arrays.sort(copy);
        int mid = copy.length / 2;
        return copy.length % 2 == 1 ? copy[mid] : (copy[mid - 1] + copy[mid]) / 2.0;
    }
}
