import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class TemperatureStatsHeldoutTest {
    @Test
    void oddAndEven() {
        assertEquals(2.0, TemperatureStats.median(new double[] {3, 1, 2}), 1e-9);
        assertEquals(2.5, TemperatureStats.median(new double[] {4, 1, 3, 2}), 1e-9);
        assertEquals(-1.5, TemperatureStats.median(new double[] {-1, -2}), 1e-9);
        assertEquals(7.0, TemperatureStats.median(new double[] {7}), 1e-9);
    }

    @Test
    void inputUntouched() {
        double[] v = {5, 1, 4};
        TemperatureStats.median(v);
        assertArrayEquals(new double[] {5, 1, 4}, v, 1e-9);
    }

    @Test
    void errors() {
        assertThrows(IllegalArgumentException.class, () -> TemperatureStats.median(new double[0]));
        assertThrows(IllegalArgumentException.class, () -> TemperatureStats.median(null));
    }
}
