import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class FibCalcHeldoutTest {
    @Test
    void smallValues() {
        assertEquals(0L, FibCalc.fib(0));
        assertEquals(1L, FibCalc.fib(1));
        assertEquals(1L, FibCalc.fib(2));
        assertEquals(55L, FibCalc.fib(10));
    }

    @Test
    void largestThatFits() {
        assertEquals(7540113804746346429L, FibCalc.fib(92));
    }

    @Test
    void errors() {
        assertThrows(IllegalArgumentException.class, () -> FibCalc.fib(-1));
        assertThrows(ArithmeticException.class, () -> FibCalc.fib(93));
    }
}
