import java.util.*;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class TextWrapperHeldoutTest {
    @Test
    void example() {
        assertEquals(List.of("the quick", "brown fox"), TextWrapper.wrap("the quick brown fox", 10));
    }

    @Test
    void longWordOnItsOwnLine() {
        assertEquals(List.of("a", "abcdefghij", "b"), TextWrapper.wrap("a abcdefghij b", 4));
    }

    @Test
    void whitespaceCollapses() {
        assertEquals(List.of("one two", "three"), TextWrapper.wrap("  one \n two\t three ", 7));
    }

    @Test
    void exactFit() {
        assertEquals(List.of("ab cd"), TextWrapper.wrap("ab cd", 5));
    }

    @Test
    void emptyAndErrors() {
        assertEquals(List.of(), TextWrapper.wrap("   ", 5));
        assertThrows(IllegalArgumentException.class, () -> TextWrapper.wrap("a", 0));
        assertThrows(IllegalArgumentException.class, () -> TextWrapper.wrap(null, 3));
    }
}
