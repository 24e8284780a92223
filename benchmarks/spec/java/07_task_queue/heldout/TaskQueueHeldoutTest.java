import java.util.NoSuchElementException;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class TaskQueueHeldoutTest {
    @Test
    void urgentFirstThenFifo() {
        TaskQueue q = new TaskQueue();
        q.add("low", 1);
        q.add("high-a", 5);
        q.add("mid", 3);
        q.add("high-b", 5);
        assertEquals(4, q.size());
        assertEquals("high-a", q.poll());
        assertEquals("high-b", q.poll());
        assertEquals("mid", q.poll());
        assertEquals("low", q.poll());
        assertEquals(0, q.size());
    }

    @Test
    void negativePriorities() {
        TaskQueue q = new TaskQueue();
        q.add("a", -2);
        q.add("b", -1);
        assertEquals("b", q.poll());
    }

    @Test
    void errors() {
        TaskQueue q = new TaskQueue();
        assertThrows(NoSuchElementException.class, q::poll);
        assertThrows(IllegalArgumentException.class, () -> q.add("", 1));
        assertThrows(IllegalArgumentException.class, () -> q.add(null, 1));
    }
}
