public class RomanNumerals {
    private static final int[] VALUES = {1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1};
    private static final String[] LETTERS = {"M", "CM", "D", "CD", "C", "XC", "L", "XL", "X", "IX", "V", "IV", "I"};

    public static int fromRoman(String s) {
        if (s == null || s.isEmpty()) throw new IllegalArgumentException("empty numeral");
        int total = 0;
        int i = 0;
        String rest = s;
        while (i < VALUES.length && !rest.isEmpty()) {
            if (rest.startsWith(LETTERS[i])) {
                total += VALUES[i];
                rest = rest.substring(LETTERS[i].length());
            } else {
                i++;
            }
        }
        if (!rest.isEmpty() || total > 3999 || !toRoman(total).equals(s)) {
            throw new IllegalArgumentException("not a canonical Roman numeral: " + s);
        }
        return total;
    }

    private static String toRoman(int n) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < VALUES.length; i++) {
            while (n >= VALUES[i]) {
                out.append(LETTERS[i]);
                n -= VALUES[i];
            }
        }
        return out.toString();
    }
}
