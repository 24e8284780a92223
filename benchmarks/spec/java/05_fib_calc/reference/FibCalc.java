public class FibCalc {
    public static long fib(int n) {
        if (n < 0) throw new IllegalArgumentException("n must not be negative");
        if (n > 92) throw new ArithmeticException("fib(" + n + ") overflows a long");
        long a = 0, b = 1;
        for (int i = 0; i < n; i++) {
            long next = a + b;
            a = b;
            b = next;
        }
        return a;
    }
}
