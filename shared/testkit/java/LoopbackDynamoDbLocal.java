// DynamoDB Local, started as its own main would start it, but listening on 127.0.0.1 only.
//
// DynamoDB Local has no option for the address it binds, and its Jetty server listens on every
// interface by default. This launcher builds the server with DynamoDB Local's own
// `ServerRunner.createServerFromCommandLineArgs` (same arguments as the jar), sets the host of
// its connectors to 127.0.0.1 before starting it, and refuses to run if that is not possible.
//
// Run with Java's source launcher (no compilation step, no JDK needed beyond the runtime):
//   java -cp 'DynamoDBLocal.jar:DynamoDBLocal_lib/*' LoopbackDynamoDbLocal.java -inMemory -port N
import java.lang.reflect.Field;
import java.lang.reflect.Method;

public class LoopbackDynamoDbLocal {
    public static void main(String[] args) throws Exception {
        Class<?> runner = Class.forName("software.amazon.dynamodb.services.local.main.ServerRunner");
        Object proxy = runner.getMethod("createServerFromCommandLineArgs", String[].class)
            .invoke(null, (Object) args);
        Field serverField = proxy.getClass().getDeclaredField("server");
        serverField.setAccessible(true);
        Object server = serverField.get(proxy);
        Object[] connectors = (Object[]) server.getClass().getMethod("getConnectors").invoke(server);
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local has no connector to bind to 127.0.0.1");
        }
        for (Object connector : connectors) {
            Method setHost = connector.getClass().getMethod("setHost", String.class);
            setHost.invoke(connector, "127.0.0.1");
        }
        proxy.getClass().getMethod("start").invoke(proxy);
        System.out.println("DynamoDB Local listening on 127.0.0.1");
        proxy.getClass().getMethod("join").invoke(proxy);
    }
}
