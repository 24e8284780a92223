import java.util.*;

public class TaskQueue {
    private final PriorityQueue<long[]> heap = new PriorityQueue<>(
            (a, b) -> a[0] != b[0] ? Long.compare(b[0], a[0]) : Long.compare(a[1], b[1]));
    private final Map<Long, String> names = new HashMap<>();
    private long counter = 0;

    public void add(String name, int priority) {
        if (name == null || name.isEmpty()) throw new IllegalArgumentException("name is empty");
        long id = counter++;
        names.put(id, name);
        heap.add(new long[] {priority, id});
    }

    public String poll() {
        long[] top = heap.poll();
        if (top == null) throw new NoSuchElementException("queue is empty");
        return names.remove(top[1]);
    }

    public int size() {
        return heap.size();
    }
}
