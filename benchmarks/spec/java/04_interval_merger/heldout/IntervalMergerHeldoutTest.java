import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class IntervalMergerHeldoutTest {
    @Test
    void mergesAndSorts() {
        assertArrayEquals(new int[][] {{1, 6}, {8, 10}}, IntervalMerger.merge(new int[][] {{8, 10}, {1, 3}, {2, 6}}));
    }

    @Test
    void touchingAndContained() {
        assertArrayEquals(new int[][] {{1, 5}}, IntervalMerger.merge(new int[][] {{1, 2}, {2, 5}}));
        assertArrayEquals(new int[][] {{0, 9}}, IntervalMerger.merge(new int[][] {{0, 9}, {3, 4}}));
    }

    @Test
    void empty() {
        assertEquals(0, IntervalMerger.merge(new int[0][]).length);
    }

    @Test
    void inputUntouched() {
        int[][] in = {{5, 7}, {1, 6}};
        IntervalMerger.merge(in);
        assertArrayEquals(new int[][] {{5, 7}, {1, 6}}, in);
    }

    @Test
    void invalid() {
        assertThrows(IllegalArgumentException.class, () -> IntervalMerger.merge(new int[][] {{3, 1}}));
        assertThrows(IllegalArgumentException.class, () -> IntervalMerger.merge(new int[][] {{1, 2, 3}}));
    }
}
