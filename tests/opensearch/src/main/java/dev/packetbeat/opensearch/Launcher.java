package dev.packetbeat.opensearch;

import java.nio.file.Path;
import java.util.Collections;
import java.util.List;

import org.opensearch.common.settings.Settings;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * A single-node OpenSearch for tests: {@code Launcher <http-port> <home-dir>}. Binds 127.0.0.1
 * only, keeps its data under the home directory, and runs until the process is killed.
 */
public final class Launcher {
    private Launcher() {}

    /** Node's constructor that takes classpath plugins is protected; this opens it. */
    static final class TestNode extends Node {
        TestNode(Settings settings, List<Class<? extends Plugin>> plugins) {
            super(InternalSettingsPreparer.prepareEnvironment(settings, Collections.emptyMap(), null, () -> "pb-test"),
                plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Launcher <http-port> <home-dir>");
            System.exit(2);
        }
        Path home = Path.of(args[1]).toAbsolutePath();
        Settings settings = Settings.builder()
            .put("cluster.name", "packetbeat-test")
            .put("node.name", "pb-test")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", args[0])
            .put("transport.port", "0")
            .put("discovery.type", "single-node")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", true)
            .build();
        Node node = new TestNode(settings, List.of(Netty4Plugin.class));
        node.start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                // exiting anyway
            }
        }));
        System.out.println("opensearch started on 127.0.0.1:" + args[0]);
        Thread.currentThread().join();
    }
}
