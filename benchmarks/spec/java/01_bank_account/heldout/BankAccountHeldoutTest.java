import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class BankAccountHeldoutTest {
    @Test
    void depositAndWithdraw() throws Exception {
        BankAccount a = new BankAccount(100);
        a.deposit(50);
        a.withdraw(30);
        assertEquals(120L, a.getBalance());
        a.withdraw(120);
        assertEquals(0L, a.getBalance());
    }

    @Test
    void overdraftIsCheckedAndChangesNothing() {
        BankAccount a = new BankAccount(10);
        assertThrows(InsufficientFundsException.class, () -> a.withdraw(11));
        assertEquals(10L, a.getBalance());
        assertFalse(RuntimeException.class.isAssignableFrom(InsufficientFundsException.class));
        assertEquals("no", new InsufficientFundsException("no").getMessage());
    }

    @Test
    void invalidAmounts() {
        assertThrows(IllegalArgumentException.class, () -> new BankAccount(-1));
        BankAccount a = new BankAccount(0);
        assertThrows(IllegalArgumentException.class, () -> a.deposit(0));
        assertThrows(IllegalArgumentException.class, () -> a.deposit(-5));
        assertThrows(IllegalArgumentException.class, () -> a.withdraw(0));
    }
}
