// The Java twin of main.go: the work of a small web service (text encoding and parsing,
// hashing, sorting, compression, regular expressions, string building), recorded by the JDK's
// Flight Recorder. Run by scripts/record_loadgen_profiles.sh.
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.*;
import java.util.regex.Pattern;
import java.util.zip.GZIPOutputStream;

public class Service {
    record Item(String sku, int quantity, double price) {}
    record Order(int id, String customer, List<Item> items) {}

    static final Pattern SKU = Pattern.compile("sku-0*(\\d+)7\\b");
    static final ArrayDeque<byte[]> retained = new ArrayDeque<>();

    static List<Order> makeOrders(int n) {
        List<Order> orders = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            List<Item> items = new ArrayList<>();
            for (int j = 0; j < 1 + i % 7; j++) items.add(new Item(String.format("sku-%05d", (i * 31 + j) % 20000), 1 + j, i % 97 + 0.99));
            orders.add(new Order(i, "customer-" + (i % 1000), items));
        }
        return orders;
    }

    static String encodeOrders(List<Order> orders) {
        StringBuilder b = new StringBuilder();
        for (Order o : orders) {
            b.append(o.id()).append('|').append(o.customer());
            for (Item it : o.items()) b.append('|').append(it.sku()).append(',').append(it.quantity()).append(',').append(it.price());
            b.append('\n');
        }
        return b.toString();
    }

    static List<Order> decodeOrders(String body) {
        List<Order> orders = new ArrayList<>();
        for (String line : body.split("\n")) {
            String[] parts = line.split("\\|");
            List<Item> items = new ArrayList<>();
            for (int k = 2; k < parts.length; k++) {
                String[] f = parts[k].split(",");
                items.add(new Item(f[0], Integer.parseInt(f[1]), Double.parseDouble(f[2])));
            }
            orders.add(new Order(Integer.parseInt(parts[0]), parts[1], items));
        }
        return orders;
    }

    static byte[] checksum(byte[] body) throws Exception { return MessageDigest.getInstance("SHA-256").digest(body); }

    static byte[] compress(byte[] body) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) { gz.write(body); }
        return out.toByteArray();
    }

    static int matchSkus(List<Order> orders) {
        int matches = 0;
        for (Order o : orders) for (Item it : o.items()) if (SKU.matcher(it.sku()).find()) matches++;
        return matches;
    }

    static List<String> rankCustomers(List<Order> orders) {
        Map<String, Double> totals = new HashMap<>();
        for (Order o : orders) for (Item it : o.items()) totals.merge(o.customer(), it.quantity() * it.price(), Double::sum);
        List<String> names = new ArrayList<>(totals.keySet());
        names.sort((a, b) -> Double.compare(totals.get(b), totals.get(a)));
        return names;
    }

    static String renderReport(List<String> names) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < names.size(); i++) b.append(i + 1).append(". ").append(names.get(i).toUpperCase()).append('\n');
        return b.toString();
    }

    static int handleRequest(int n) throws Exception {
        List<Order> orders = makeOrders(n);
        byte[] body = encodeOrders(orders).getBytes(StandardCharsets.UTF_8);
        List<Order> decoded = decodeOrders(new String(body, StandardCharsets.UTF_8));
        byte[] digest = checksum(body);
        byte[] packed = compress(body);
        String report = renderReport(rankCustomers(decoded));
        if (n % 3 == 0) { retained.addLast(packed); if (retained.size() > 64) retained.removeFirst(); }
        return matchSkus(decoded) + digest[0] + report.length();
    }

    public static void main(String[] args) throws Exception {
        long end = System.currentTimeMillis() + Long.parseLong(args[0]);
        long total = 0;
        for (int i = 0; System.currentTimeMillis() < end; i++) total += handleRequest(200 + i % 400);
        System.out.println(total);
    }
}
