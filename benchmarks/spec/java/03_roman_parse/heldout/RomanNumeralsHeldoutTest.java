import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class RomanNumeralsHeldoutTest {
    @Test
    void examples() {
        assertEquals(14, RomanNumerals.fromRoman("XIV"));
        assertEquals(1994, RomanNumerals.fromRoman("MCMXCIV"));
    }

    @Test
    void bounds() {
        assertEquals(1, RomanNumerals.fromRoman("I"));
        assertEquals(3999, RomanNumerals.fromRoman("MMMCMXCIX"));
        assertEquals(40, RomanNumerals.fromRoman("XL"));
    }

    @Test
    void invalid() {
        for (String bad : new String[] {"", "IIII", "IC", "VX", "MMMM", "xiv", "X1", "IIV"}) {
            assertThrows(IllegalArgumentException.class, () -> RomanNumerals.fromRoman(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> RomanNumerals.fromRoman(null));
    }
}
