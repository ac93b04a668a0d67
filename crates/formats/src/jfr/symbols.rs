//! Frame names as Pyroscope makes them from a recording: `class.method` with the class in the
//! JVM's internal form (`java/lang/Thread.run`), after the symbol clean-ups Pyroscope applies
//! to keep generated names from splitting one function into thousands: lambdas
//! (`App$$Lambda$12/0x…` → `App$$Lambda_`), reflection accessors (`GeneratedMethodAccessor17`
//! → `…Accessor_`), Spring CGLIB proxies, and native libraries unpacked under random names
//! (`libzstd-jni-…`, the Pyroscope agent's `libasyncProfiler-…`, Amazon Corretto Crypto
//! Provider). Names Pyroscope leaves alone (JDK 17's `App$$Lambda$12+0x…/123`, another
//! async-profiler build's library) stay as they are.

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

struct Rule {
    /// A cheap test that must pass before the expression is tried.
    needle: &'static str,
    pattern: Regex,
    replacement: &'static str,
}

fn rule(needle: &'static str, pattern: &str, replacement: &'static str) -> Rule {
    Rule {
        needle,
        // The patterns are constants, checked by the tests below.
        pattern: Regex::new(pattern).unwrap_or_else(|e| panic!("symbol rule {pattern}: {e}")),
        replacement,
    }
}

/// Pyroscope's rules (its JFR parser's symbol processor), the same expressions so that the
/// same recording gives the same frame names: `[0-9]` where Go writes `\d` (ASCII there),
/// lower-case hex where it does, and async-profiler's library renamed only for the one build
/// Pyroscope's Java agent bundles; other builds keep their name, as Pyroscope shows them.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let deleted = r"(?: \(deleted\))?";
    let tmp = r"(?:\.?/tmp/)?";
    vec![
        rule(
            "GeneratedMethodAccessor",
            r"^(jdk/internal/reflect/GeneratedMethodAccessor)[0-9]+$",
            "${1}_",
        ),
        rule(
            "$$Lambda",
            r"^(.+\$\$Lambda)(?:\$?[0-9]*[./](?:0x)?[0-9a-f]+|[0-9]+)$",
            "${1}_",
        ),
        rule(
            "libzstd-jni",
            &format!(r"^{tmp}libzstd-jni-[0-9]+\.[0-9]+\.[0-9]+-[0-9]+\.so{deleted}$"),
            "libzstd-jni-_.so",
        ),
        rule(
            "amazonCorrettoCryptoProvider",
            &format!(
                r"^{tmp}(?:lib)?amazonCorrettoCryptoProvider(?:NativeLibraries\.)?[0-9a-f]{{16}}(?:/libcrypto|/libamazonCorrettoCryptoProvider)?\.so{deleted}$"
            ),
            "libamazonCorrettoCryptoProvider_.so",
        ),
        rule(
            "libasyncProfiler",
            &format!(
                r"^{tmp}libasyncProfiler-(?:linux-arm64|linux-musl-x64|linux-x64|macos)-17b9a1d8156277a98ccc871afa9a8f69215f92\.so{deleted}$"
            ),
            "libasyncProfiler-_.so",
        ),
        rule(
            "$$EnhancerBySpringCGLIB$$",
            r"^(.+\$\$EnhancerBySpringCGLIB\$\$).*$",
            "${1}_",
        ),
    ]
});

/// A symbol (class or method name) with generated parts replaced.
pub(crate) fn normalize(symbol: &str) -> Cow<'_, str> {
    let mut current = Cow::Borrowed(symbol);
    for rule in RULES.iter() {
        if !current.contains(rule.needle) {
            continue;
        }
        if let Cow::Owned(replaced) = rule.pattern.replace(&current, rule.replacement) {
            current = Cow::Owned(replaced);
        }
    }
    current
}

/// The function name of a frame.
pub(crate) fn frame_name(class: &str, method: &str) -> String {
    let mut name = String::with_capacity(class.len() + 1 + method.len());
    name.push_str(class);
    name.push('.');
    name.push_str(method);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_collapse() {
        let cases = [
            ("App$$Lambda$4/1283928880", "App$$Lambda_"),
            (
                "org/x/Foo$$Lambda$8/0x0000000800c01000",
                "org/x/Foo$$Lambda_",
            ),
            ("Fib$$Lambda.0x00007f0c8c00a000", "Fib$$Lambda_"),
            ("Fib$$Lambda17", "Fib$$Lambda_"),
            // What Pyroscope's rule does not match stays as it is.
            ("Fib$$Lambda$17", "Fib$$Lambda$17"),
            (
                "jdk.jfr.internal.PlatformRecorder$$Lambda$76+0x00007fe7dc042338/370869802",
                "jdk.jfr.internal.PlatformRecorder$$Lambda$76+0x00007fe7dc042338/370869802",
            ),
            (
                "App$$Lambda$8/0x0000000800C01000",
                "App$$Lambda$8/0x0000000800C01000",
            ),
            (
                "jdk/internal/reflect/GeneratedMethodAccessor31",
                "jdk/internal/reflect/GeneratedMethodAccessor_",
            ),
            ("/tmp/libzstd-jni-1.5.2-1234567.so", "libzstd-jni-_.so"),
            (
                "./tmp/libzstd-jni-1.5.5-4 (deleted)",
                "./tmp/libzstd-jni-1.5.5-4 (deleted)",
            ),
            ("libzstd-jni-1.5.5-4.so (deleted)", "libzstd-jni-_.so"),
            (
                "/tmp/libasyncProfiler-linux-x64-17b9a1d8156277a98ccc871afa9a8f69215f92.so",
                "libasyncProfiler-_.so",
            ),
            (
                "libasyncProfiler-macos-17b9a1d8156277a98ccc871afa9a8f69215f92.so (deleted)",
                "libasyncProfiler-_.so",
            ),
            // Another async-profiler build keeps its library's name, as in Pyroscope.
            (
                "/tmp/libasyncProfiler-linux-x64-0123456789abcdef0123456789abcdef012345.so",
                "/tmp/libasyncProfiler-linux-x64-0123456789abcdef0123456789abcdef012345.so",
            ),
            (
                "/tmp/libamazonCorrettoCryptoProvider4F8A0B1C2D3E4F50.so",
                "/tmp/libamazonCorrettoCryptoProvider4F8A0B1C2D3E4F50.so",
            ),
            (
                "jdk/internal/reflect/GeneratedMethodAccessor\u{0663}",
                "jdk/internal/reflect/GeneratedMethodAccessor\u{0663}",
            ),
            (
                "/tmp/amazonCorrettoCryptoProviderNativeLibraries.4f8a0b1c2d3e4f50/libcrypto.so",
                "libamazonCorrettoCryptoProvider_.so",
            ),
            (
                "com/x/Service$$EnhancerBySpringCGLIB$$9a8b7c",
                "com/x/Service$$EnhancerBySpringCGLIB$$_",
            ),
            (
                "java/lang/invoke/LambdaForm$DMH.0x0000000801208c00",
                "java/lang/invoke/LambdaForm$DMH.0x0000000801208c00",
            ),
            ("java/lang/Thread", "java/lang/Thread"),
            ("lambda$main$0", "lambda$main$0"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input), expected, "{input}");
        }
    }

    #[test]
    fn frames_join_class_and_method() {
        assert_eq!(
            frame_name("java/lang/Thread", "run"),
            "java/lang/Thread.run"
        );
        assert_eq!(frame_name("", "__GI___write"), ".__GI___write");
    }
}
