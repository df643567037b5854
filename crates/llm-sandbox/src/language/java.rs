//! Java, run in source-file mode.

use std::sync::LazyLock;

use regex::Regex;

use super::detect::{covers, lines, literals_after};
use super::handler::{LanguageHandler, RunContext, Toolchain};
use super::source::{MaskedSource, Syntax};

/// Java (`java Main.java`, source-file mode: compile errors come back as the run's result).
#[derive(Debug, Clone, Copy, Default)]
pub struct Java;

impl LanguageHandler for Java {
    fn name(&self) -> &str {
        "java"
    }
    fn file_extension(&self) -> &str {
        "java"
    }
    fn file_name(&self) -> String {
        "Main.java".into()
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "java",
            package: "default-jdk-headless",
        }]
    }
    fn run_command(&self, ctx: &RunContext) -> Vec<String> {
        let mut command = vec![
            "java".to_string(),
            "-XX:+UseSerialGC".into(),
            "-XX:TieredStopAtLevel=1".into(),
            "-Xshare:auto".into(),
        ];
        if let Some(bytes) = ctx.memory_limit {
            // The JVM cannot see the sandbox's cgroup; size its heap from the limit instead.
            command.push(format!("-XX:MaxRAM={bytes}"));
        }
        command.push(ctx.source_path.clone());
        command
    }
    fn syntax(&self) -> Syntax {
        Syntax::CLike
    }
    /// `import p.C;`, `import p.*;`, `import static p.C.m;`; the module written out in code
    /// (`java.lang.Runtime.getRuntime()`); for a `java.lang` class, which is imported implicitly,
    /// its simple name (`Runtime.getRuntime()`); and `Class.forName("p.C")`/`loadClass("p.C")`.
    /// A package covers its classes and subpackages; a wildcard import covers the package's
    /// classes.
    fn module_uses(&self, source: &MaskedSource, module: &str) -> Vec<usize> {
        let mut offsets: Vec<usize> = IMPORT
            .captures_iter(&source.masked)
            .filter_map(|caps| caps.get(1))
            .filter(|name| {
                let name: String = name.as_str().split_whitespace().collect();
                java_covers(module, &name)
            })
            .map(|name| name.start())
            .collect();
        offsets.extend(
            literals_after(source, &REFLECTION)
                .filter(|literal| java_covers(module, literal.value.trim()))
                .map(|literal| literal.start),
        );
        offsets.extend(qualified_uses(source, module));
        lines(offsets.into_iter().map(|o| source.line_of(o)).collect())
    }
}

/// `import a.b.C;`, `import a.b.*;`, `import static a.b.C.m;` (blanks allowed around the dots).
static IMPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bimport\s+(?:static\s+)?([\w$]+(?:\s*\.\s*[\w$]+)*(?:\s*\.\s*\*)?)\s*;")
        .expect("valid regex")
});
/// `Class.forName("a.b.C")`, `loader.loadClass("a.b.C")`: a class named by a string literal.
static REFLECTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\b(?:forName|loadClass)\s*\(\s*""#).expect("valid regex"));

/// Whether the class or package `name` is `module`, in it, or (a wildcard import) brings in the
/// class `module`.
fn java_covers(module: &str, name: &str) -> bool {
    let module = module.trim();
    if covers(module, name, '.') || covers(module, name, '$') {
        return true;
    }
    match name.strip_suffix(".*") {
        Some(package) => module
            .strip_prefix(package)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|class| !class.is_empty() && !class.contains('.')),
        None => false,
    }
}

/// Offsets of `module` written out in code (`java.lang.Runtime.getRuntime()`), and for a
/// `java.lang` class, which every file imports implicitly, of its simple name too.
fn qualified_uses(source: &MaskedSource, module: &str) -> Vec<usize> {
    let parts: Vec<&str> = module.split('.').map(str::trim).collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Vec::new();
    }
    let escaped: Vec<String> = parts.iter().map(|part| regex::escape(part)).collect();
    let mut names = vec![escaped.join(r"\s*\.\s*")];
    if let ["java", "lang", class] = parts.as_slice() {
        if class.starts_with(|c: char| c.is_ascii_uppercase()) {
            names.push(regex::escape(class));
        }
    }
    let mut offsets = Vec::new();
    for name in names {
        let Ok(regex) = Regex::new(&format!(r"(?:^|[^\w$.])({name})(?:[^\w$]|$)")) else {
            continue;
        };
        offsets.extend(
            regex
                .captures_iter(&source.masked)
                .filter_map(|caps| caps.get(1).map(|m| m.start())),
        );
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(code: &str, module: &str) -> Vec<usize> {
        Java.module_uses(&MaskedSource::new(code, Java.syntax()), module)
    }

    #[test]
    fn imports() {
        assert_eq!(
            uses("import java.lang.reflect.Method;", "java.lang.reflect"),
            [1]
        );
        assert_eq!(uses("import java.io.*;", "java.io"), [1]);
        assert_eq!(
            uses("import java.util.List;\nimport java.io.File;", "java.io"),
            [2]
        );
        assert_eq!(
            uses(
                "import static java.lang.Runtime.getRuntime;",
                "java.lang.Runtime"
            ),
            [1]
        );
        assert_eq!(uses("import java . io . File ;", "java.io"), [1]);
        assert_eq!(uses("import java.io.*;", "java.io.File"), [1]);
        assert_eq!(uses("import java.net.http.HttpClient;", "java.net"), [1]);
    }

    #[test]
    fn fully_qualified_and_implicit_java_lang_uses() {
        let code = "class Main {\n  void f() throws Exception {\n    java.lang.Runtime.getRuntime().exec(\"id\");\n  }\n}";
        assert_eq!(uses(code, "java.lang.Runtime"), [3]);
        let code = "class Main {\n  void f() throws Exception {\n    Runtime.getRuntime().exec(\"id\");\n    new ProcessBuilder(\"ls\").start();\n  }\n}";
        assert_eq!(uses(code, "java.lang.Runtime"), [3]);
        assert_eq!(uses(code, "java.lang.ProcessBuilder"), [4]);
        assert_eq!(uses("java.io.File f = null;", "java.io"), [1]);
        assert_eq!(
            uses("var f = new java.io.File(\"x\");", "java.io.File"),
            [1]
        );
    }

    #[test]
    fn reflection_by_name() {
        let code = "Class<?> c = Class.forName(\"java.lang.Runtime\");";
        assert_eq!(uses(code, "java.lang.Runtime"), [1]);
        let code = "var c = loader.loadClass(\"java.lang.ProcessBuilder$Redirect\");";
        assert_eq!(uses(code, "java.lang.ProcessBuilder"), [1]);
    }

    #[test]
    fn comments_strings_and_similar_names_do_not_count() {
        for code in [
            "// import java.io.File;",
            "/* import java.io.*; */",
            "String s = \"import java.io.File;\";",
            "import java.iox.Foo;",
            "import javax.io.Foo;",
            "import my.java.io.Foo;",
            "String s = \"java.io.File\";",
            "import java.nio.file.Path;",
        ] {
            assert_eq!(uses(code, "java.io"), Vec::<usize>::new(), "{code:?}");
        }
        for code in [
            "class MyRuntime {}",
            "String s = \"Runtime\";",
            "// Runtime.getRuntime()",
            "other.Runtime r;",
        ] {
            assert_eq!(
                uses(code, "java.lang.Runtime"),
                Vec::<usize>::new(),
                "{code:?}"
            );
        }
        // A wildcard import brings in classes of the package, not its subpackages.
        assert_eq!(
            uses("import java.nio.*;", "java.nio.file.Files"),
            Vec::<usize>::new()
        );
    }
}
