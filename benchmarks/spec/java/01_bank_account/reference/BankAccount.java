public class BankAccount {
    private long balance;

    public BankAccount(long initialCents) {
        if (initialCents < 0) throw new IllegalArgumentException("negative initial balance");
        balance = initialCents;
    }

    public void deposit(long cents) {
        if (cents <= 0) throw new IllegalArgumentException("deposit must be positive");
        balance += cents;
    }

    public void withdraw(long cents) throws InsufficientFundsException {
        if (cents <= 0) throw new IllegalArgumentException("withdrawal must be positive");
        if (cents > balance) throw new InsufficientFundsException("balance " + balance + " < " + cents);
        balance -= cents;
    }

    public long getBalance() {
        return balance;
    }
}
