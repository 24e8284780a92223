import java.util.*;

public class WordStats {
    public static Map<String, Integer> countWords(String text) {
        if (text == null) throw new IllegalArgumentException("text is null");
        Map<String, Integer> counts = new HashMap<>();
        for (String w : text.split("[^A-Za-z]+")) {
            if (!w.isEmpty()) counts.merge(w.toLowerCase(), 1, Integer::sum);
        }
        List<Map.Entry<String, Integer>> entries = new ArrayList<>(counts.entrySet());
        entries.sort((x, y) -> !x.getValue().equals(y.getValue()) ? y.getValue() - x.getValue()
                : x.getKey().compareTo(y.getKey()));
        Map<String, Integer> out = new LinkedHashMap<>();
        for (Map.Entry<String, Integer> e : entries) out.put(e.getKey(), e.getValue());
        return out;
    }
}
