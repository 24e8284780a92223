import java.util.*;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class WordStatsHeldoutTest {
    @Test
    void example() {
        Map<String, Integer> m = WordStats.countWords("b a B c");
        assertEquals(List.of("b", "a", "c"), new ArrayList<>(m.keySet()));
        assertEquals(2, m.get("b"));
        assertEquals(1, m.get("a"));
    }

    @Test
    void punctuationAndDigitsSeparate() {
        Map<String, Integer> m = WordStats.countWords("don't stop2stop");
        assertEquals(List.of("stop", "don", "t"), new ArrayList<>(m.keySet()));
        assertEquals(2, m.get("stop"));
    }

    @Test
    void emptyAndNull() {
        assertTrue(WordStats.countWords("").isEmpty());
        assertTrue(WordStats.countWords(" ,; ").isEmpty());
        assertThrows(IllegalArgumentException.class, () -> WordStats.countWords(null));
    }
}
