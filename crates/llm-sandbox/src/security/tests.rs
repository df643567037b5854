use super::*;
use crate::language::{Cpp, Go, Java, JavaScript, LanguageRegistry, Python, Ruby};
use SecurityIssueSeverity::{High, Low, Medium, Safe};

fn lines(violations: &[Violation]) -> Vec<usize> {
    violations.iter().map(|v| v.line).collect()
}

fn blocked(policy: &SecurityPolicy, language: &dyn LanguageHandler, code: &str) -> bool {
    !policy.check(language, code).is_empty()
}

#[test]
fn severity_order_names_and_parsing() {
    assert!(Safe < Low && Low < Medium && Medium < High);
    assert_eq!(High as u8, 3);
    for level in SecurityIssueSeverity::ALL {
        assert_eq!(
            level.to_string().parse::<SecurityIssueSeverity>().unwrap(),
            level
        );
        let json = serde_json::to_string(&level).unwrap();
        assert_eq!(json, format!("\"{level}\""));
        assert_eq!(
            serde_json::from_str::<SecurityIssueSeverity>(&json).unwrap(),
            level
        );
    }
    assert_eq!(" HIGH ".parse::<SecurityIssueSeverity>().unwrap(), High);
    let err = "severe".parse::<SecurityIssueSeverity>().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
    assert!(err.to_string().contains("severe"), "{err}");
}

#[test]
fn invalid_regex_is_an_invalid_argument_naming_the_pattern() {
    let err = SecurityPattern::new(r"eval\((", "x", High).unwrap_err();
    let Error::InvalidArgument(message) = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains(r"`eval\((`"), "{message}");
    assert!(message.contains("unclosed group"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn patterns_match_code_not_comments_or_strings() {
    let mut policy = SecurityPolicy::new(Low);
    policy.add_pattern(SecurityPattern::new(r"os\.system", "shell", High).unwrap());
    let code = "print(\"os.system\")\n# os.system('x')\ns = '''\nos.system\n'''\nos.system('id')\n";
    let violations = policy.check(&Python, code);
    assert_eq!(lines(&violations), [6]);
    assert_eq!(violations[0].matched, "os.system");
    assert_eq!(violations[0].description, "shell");
    assert_eq!(violations[0].severity, High);
    // The same in C-like and Ruby comments.
    assert!(policy
        .check(&JavaScript, "// os.system\n/* os.system */")
        .is_empty());
    assert!(policy
        .check(&Ruby, "# os.system\n=begin\nos.system\n=end\n")
        .is_empty());
}

#[test]
fn threshold_semantics() {
    let mut policy = SecurityPolicy::new(Safe);
    for (word, level) in [("aa", Safe), ("bb", Low), ("cc", Medium), ("dd", High)] {
        policy.add_pattern(SecurityPattern::new(format!(r"\b{word}\b"), word, level).unwrap());
        policy.add_restricted_module(RestrictedModule::new(format!("m{word}"), word, level));
    }
    let code = "aa; bb; cc; dd\nimport maa, mbb, mcc, mdd\n";
    for (threshold, expected) in [(Safe, 4), (Low, 3), (Medium, 2), (High, 1)] {
        policy.severity_threshold = threshold;
        let violations = policy.check(&Python, code);
        assert_eq!(
            violations.len(),
            expected * 2,
            "{threshold}: {violations:#?}"
        );
        assert!(violations.iter().all(|v| v.severity >= threshold));
    }
}

#[test]
fn line_numbers_are_exact_and_sorted() {
    let mut policy = SecurityPolicy::new(Low);
    policy.add_pattern(SecurityPattern::new(r"(?:^|[^.\w])eval\s*\(", "eval", Medium).unwrap());
    policy.add_restricted_module(RestrictedModule::new("socket", "net", Medium));
    let code = "x = 1\neval(s)\n\"\"\"\nimport socket\n\"\"\"\n\nimport socket\ny = eval (t); df.eval('z')\n";
    let violations = policy.check(&Python, code);
    assert_eq!(lines(&violations), [2, 7, 8]);
    assert_eq!(violations[0].matched, "eval(");
    assert_eq!(violations[1].matched, "import socket");
    assert_eq!(
        violations[1].description,
        "uses the restricted module `socket`: net"
    );
    assert_eq!(violations[2].matched, "eval (");
}

#[test]
fn check_does_not_change_the_policy_and_is_repeatable() {
    let policy = SecurityPolicy::preset("strict").unwrap();
    let before = policy.clone();
    let code = "import os\nimport subprocess\nsubprocess.run(['ls'])\neval('1')\n";
    let first = policy.check(&Python, code);
    let second = policy.check(&Python, code);
    assert!(!first.is_empty());
    assert_eq!(first, second);
    assert_eq!(policy, before);
}

#[test]
fn safe_code_is_safe_under_every_preset() {
    let code = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))  # os.system\n";
    for name in SecurityPolicy::PRESETS {
        let policy = SecurityPolicy::preset(name).unwrap();
        assert_eq!(policy.is_safe(&Python, code), (true, Vec::new()), "{name}");
    }
    let (safe, violations) = SecurityPolicy::preset("production")
        .unwrap()
        .is_safe(&Python, "import os");
    assert!(!safe);
    assert_eq!(violations.len(), 1);
}

#[test]
fn every_preset_loads_with_its_threshold() {
    for (name, threshold) in [
        ("minimal", High),
        ("development", High),
        ("educational", Low),
        ("data_science", Medium),
        ("web_scraping", Medium),
        ("production", Medium),
        ("strict", Low),
    ] {
        let policy = SecurityPolicy::preset(name).unwrap();
        assert_eq!(policy.severity_threshold, threshold, "{name}");
        assert!(!policy.patterns.is_empty(), "{name}");
    }
    assert_eq!(
        SecurityPolicy::preset("Data-Science").unwrap(),
        SecurityPolicy::preset("data_science").unwrap()
    );
    let err = SecurityPolicy::preset("paranoid").unwrap_err().to_string();
    assert!(
        err.contains("paranoid") && err.contains("web_scraping"),
        "{err}"
    );
}

/// (preset, code, blocked?) for Python.
const PYTHON_CASES: &[(&str, &str, bool)] = &[
    ("minimal", "import os\nos.system('ls')", true),
    ("minimal", "os.popen('ls')", true),
    (
        "minimal",
        "import subprocess\nsubprocess.run(['ls'])",
        false,
    ),
    ("minimal", "eval('1+1')", false),
    ("minimal", "import socket", false),
    ("development", "os.system('ls')", true),
    (
        "development",
        "import shutil\nshutil.rmtree('/tmp/x')",
        true,
    ),
    ("development", "os.execv('/bin/sh', ['sh'])", true),
    ("development", "os.fork()", true),
    (
        "development",
        "import subprocess\nsubprocess.run(['ls'])",
        false,
    ),
    (
        "development",
        "import requests\neval('1')\nos.remove('f')",
        false,
    ),
    ("educational", "import socket", true),
    ("educational", "import urllib.request", true),
    ("educational", "import subprocess", true),
    ("educational", "from subprocess import run", true),
    ("educational", "eval('1+1')", true),
    ("educational", "import ctypes", true),
    ("educational", "os.remove('f')", true),
    ("educational", "import math\nprint(math.sqrt(2))", false),
    ("educational", "import os\nprint(os.getcwd())", false),
    (
        "data_science",
        "import numpy as np\nimport pandas as pd\nimport os.path",
        false,
    ),
    (
        "data_science",
        "import multiprocessing\nopen('out.csv', 'w').write('x')",
        false,
    ),
    ("data_science", "import subprocess", true),
    ("data_science", "import pty", true),
    ("data_science", "os.system('ls')", true),
    ("data_science", "import requests", true),
    ("data_science", "from urllib.request import urlopen", true),
    ("data_science", "import socket", true),
    (
        "web_scraping",
        "import requests\nimport urllib.request\nimport socket\nimport http.client",
        false,
    ),
    (
        "web_scraping",
        "from bs4 import BeautifulSoup\nimport aiohttp",
        false,
    ),
    ("web_scraping", "import subprocess", true),
    ("web_scraping", "os.system('curl x')", true),
    ("web_scraping", "os.remove('page.html')", true),
    ("web_scraping", "import shutil\nshutil.rmtree('out')", true),
    (
        "web_scraping",
        "from pathlib import Path\nPath('x').unlink()",
        true,
    ),
    ("production", "import os", true),
    ("production", "import subprocess", true),
    ("production", "import shutil", true),
    ("production", "import socket", true),
    ("production", "import ctypes", true),
    ("production", "os.system('ls')", true),
    ("production", "subprocess.call('ls')", true),
    ("production", "eval('1')", true),
    ("production", "exec('x = 1')", true),
    ("production", "__import__('os')", true),
    ("production", "import importlib", true),
    (
        "production",
        "import json\nprint(json.dumps([1, 2]))",
        false,
    ),
    ("production", "import re\nre.compile('x').match('x')", false),
    ("production", "items = [1]\nitems.remove(1)", false),
    (
        "strict",
        "x = ().__class__.__bases__[0].__subclasses__()",
        true,
    ),
    ("strict", "import pickle", true),
    ("strict", "import multiprocessing", true),
    ("strict", "compile('1', 'f', 'eval')", true),
    ("strict", "import os", true),
    ("strict", "import json\nimport math\nprint(math.pi)", false),
];

#[test]
fn python_presets_block_what_they_say() {
    for (name, code, expected) in PYTHON_CASES {
        let policy = SecurityPolicy::preset(name).unwrap();
        let violations = policy.check(&Python, code);
        assert_eq!(
            !violations.is_empty(),
            *expected,
            "{name}: {code:?} -> {violations:#?}"
        );
    }
}

#[test]
fn presets_cover_the_other_languages() {
    let production = SecurityPolicy::preset("production").unwrap();
    let data_science = SecurityPolicy::preset("data_science").unwrap();
    let web_scraping = SecurityPolicy::preset("web_scraping").unwrap();
    let minimal = SecurityPolicy::preset("minimal").unwrap();

    let js_spawn = "const { exec } = require('node:child_process');\nexec('ls');";
    assert!(blocked(&data_science, &JavaScript, js_spawn));
    assert!(blocked(&production, &JavaScript, "import fs from 'fs';"));
    assert!(blocked(
        &data_science,
        &JavaScript,
        "const r = await fetch('http://x');"
    ));
    assert!(!blocked(
        &web_scraping,
        &JavaScript,
        "const r = await fetch('http://x');\nconst h = require('https');"
    ));
    assert!(!blocked(
        &production,
        &JavaScript,
        "const m = /a/.exec('a');\nconsole.log([1].map(x => x * 2));"
    ));

    let java = "public class Main {\n  public static void main(String[] a) throws Exception {\n    Runtime.getRuntime().exec(\"ls\");\n  }\n}";
    assert_eq!(lines(&data_science.check(&Java, java)), [3]);
    assert!(blocked(&production, &Java, "import java.net.Socket;"));
    assert!(!blocked(
        &production,
        &Java,
        "import java.util.List;\npublic class Main {}"
    ));

    let go = "package main\n\nimport (\n\t\"fmt\"\n\t\"os/exec\"\n)\n\nfunc main() { fmt.Println(exec.Command(\"ls\")) }\n";
    assert_eq!(lines(&data_science.check(&Go, go)), [5]);
    assert!(blocked(&data_science, &Go, "import _ \"net/http\""));
    assert!(!blocked(
        &data_science,
        &Go,
        "import (\n\t\"fmt\"\n\t\"math\"\n)"
    ));

    assert!(blocked(&data_science, &Ruby, "require 'open3'"));
    assert!(blocked(&minimal, &Ruby, "system('ls')"));
    assert!(blocked(&minimal, &Ruby, "system 'ls'"));
    assert!(blocked(&minimal, &Ruby, "out = %x(ls)"));
    assert!(!blocked(&minimal, &Ruby, "puts 'system(\"ls\")'"));
    assert!(blocked(&data_science, &Ruby, "require 'net/http'"));
    assert!(!blocked(
        &web_scraping,
        &Ruby,
        "require 'net/http'\nrequire 'socket'"
    ));

    assert!(blocked(
        &minimal,
        &Cpp,
        "#include <cstdlib>\nint main() { std::system(\"ls\"); }"
    ));
    assert!(blocked(
        &data_science,
        &Cpp,
        "#include <unistd.h>\nint main() { fork(); }"
    ));
    assert!(blocked(&data_science, &Cpp, "#include <sys/socket.h>"));
    assert!(!blocked(
        &production,
        &Cpp,
        "#include <iostream>\n#include <algorithm>\nint main() { std::vector<int> v; v.erase(std::remove(v.begin(), v.end(), 1), v.end()); }"
    ));
}

#[test]
fn every_builtin_language_detects_modules() {
    let registry = LanguageRegistry::new();
    let cases = [
        ("python", "import socket", "socket"),
        ("javascript", "require('net')", "net"),
        ("java", "import java.net.Socket;", "java.net"),
        ("cpp", "#include <sys/socket.h>", "sys/socket.h"),
        ("go", "import \"net\"", "net"),
        ("ruby", "require 'socket'", "socket"),
    ];
    for (name, code, module) in cases {
        let language = registry.get(name).unwrap();
        let mut policy = SecurityPolicy::new(Low);
        policy.add_restricted_module(RestrictedModule::new(module, "", Medium));
        let violations = policy.check(language.as_ref(), code);
        assert_eq!(lines(&violations), [1], "{name}");
        assert_eq!(
            violations[0].description,
            format!("uses the restricted module `{module}`")
        );
    }
}

#[test]
fn toml_round_trip() {
    for name in SecurityPolicy::PRESETS {
        let policy = SecurityPolicy::preset(name).unwrap();
        let text = policy.to_toml().unwrap();
        assert_eq!(SecurityPolicy::from_toml(&text).unwrap(), policy, "{name}");
    }
    let text = r#"
severity_threshold = "low"

[[patterns]]
pattern = '\bos\.system\s*\('
description = "runs a shell command"
severity = "high"

[[restricted_modules]]
name = "socket"
description = "network"
severity = "Medium"
"#;
    let policy = SecurityPolicy::from_toml(text).unwrap();
    assert_eq!(policy.severity_threshold, Low);
    assert_eq!(policy.patterns[0].pattern(), r"\bos\.system\s*\(");
    assert_eq!(policy.patterns[0].description(), "runs a shell command");
    assert_eq!(policy.patterns[0].severity(), High);
    assert!(policy.patterns[0].regex().is_match("os.system ("));
    assert_eq!(
        policy.restricted_modules,
        [RestrictedModule::new("socket", "network", Medium)]
    );
    assert_eq!(
        SecurityPolicy::from_toml(&policy.to_toml().unwrap()).unwrap(),
        policy
    );
    // Everything but the entries' own fields has a default.
    assert_eq!(
        SecurityPolicy::from_toml("").unwrap(),
        SecurityPolicy::default()
    );
    assert_eq!(SecurityPolicy::default().severity_threshold, Medium);
}

#[test]
fn bad_toml_is_refused_with_a_reason() {
    for (text, expected) in [
        (
            "severity_threshold = \"low\"\nthreshold = \"x\"",
            "unknown field `threshold`",
        ),
        (
            "[[patterns]]\npattern = 'x'\nseverity = 'low'\nregex = 'y'",
            "unknown field `regex`",
        ),
        (
            "[[restricted_modules]]\nname = 'os'\nseverity = 'low'\nlevel = 1",
            "unknown field `level`",
        ),
        (
            "severity_threshold = \"severe\"",
            "`severe` is not a severity",
        ),
        (
            "[[patterns]]\npattern = 'eval\\(('\nseverity = 'high'",
            "security pattern `eval\\((` is not a valid regular expression",
        ),
        ("[[patterns]]\npattern = 'x'", "missing field `severity`"),
        ("severity_threshold = ", "line 1"),
    ] {
        let err = SecurityPolicy::from_toml(text).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(expected), "{text:?}: {message}");
        assert!(message.contains("security policy TOML"), "{message}");
    }
}

#[test]
fn load_takes_a_preset_or_a_file() {
    assert_eq!(
        SecurityPolicy::load("strict").unwrap(),
        SecurityPolicy::preset("strict").unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let policy = SecurityPolicy::preset("web_scraping").unwrap();
    std::fs::write(&path, policy.to_toml().unwrap()).unwrap();
    assert_eq!(
        SecurityPolicy::load(path.to_str().unwrap()).unwrap(),
        policy
    );

    std::fs::write(&path, "nonsense = 1").unwrap();
    let err = SecurityPolicy::load(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("policy.toml") && err.contains("nonsense"),
        "{err}"
    );

    let missing = dir.path().join("missing.toml");
    let err = SecurityPolicy::load(missing.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
    let message = err.to_string();
    assert!(
        message.contains("missing.toml")
            && message.contains("neither a security preset")
            && message.contains("production"),
        "{message}"
    );
}

#[test]
fn violations_serialize_and_display() {
    let violation = Violation {
        line: 3,
        description: "runs a shell command".into(),
        severity: High,
        matched: "os.system(".into(),
    };
    assert_eq!(
        serde_json::to_value(&violation).unwrap(),
        serde_json::json!({
            "line": 3,
            "description": "runs a shell command",
            "severity": "high",
            "matched": "os.system(",
        })
    );
    assert_eq!(
        violation.to_string(),
        "line 3: [high] runs a shell command (`os.system(`)"
    );
}

#[test]
fn matches_in_multibyte_code_keep_character_boundaries() {
    let mut policy = SecurityPolicy::new(Low);
    policy.add_pattern(SecurityPattern::new(r"\s+x", "x", Low).unwrap());
    policy.add_pattern(SecurityPattern::new(r"^", "empty", Low).unwrap());
    let code = "s = 'é→ü'  # ü\nx = 1";
    let violations = policy.check(&Python, code);
    assert_eq!(lines(&violations), [2]);
    assert_eq!(violations[0].matched, "x");
}

#[test]
fn languages_without_module_detection_match_no_modules() {
    #[derive(Debug)]
    struct Plain;
    impl LanguageHandler for Plain {
        fn name(&self) -> &str {
            "plain"
        }
        fn file_extension(&self) -> &str {
            "txt"
        }
        fn toolchain(&self) -> Vec<crate::language::Toolchain> {
            Vec::new()
        }
        fn run_command(&self, _ctx: &crate::language::RunContext) -> Vec<String> {
            Vec::new()
        }
    }
    let policy = SecurityPolicy::preset("strict").unwrap();
    assert_eq!(Plain.syntax(), Syntax::CLike);
    assert!(policy
        .check(&Plain, "import os\n#include <unistd.h>")
        .is_empty());
    // Patterns still apply, on C-like masking.
    assert_eq!(lines(&policy.check(&Plain, "// eval(x)\neval(x)")), [2]);
}
