//! The security policy, enforced by a session (above the backend seam, so the native backend
//! stands for all of them).

use llm_sandbox::{
    Error, RestrictedModule, SandboxSession, SecurityIssueSeverity, SecurityPattern, SecurityPolicy,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_refuses_blocked_code_and_lists_every_violation() {
    let session = SandboxSession::builder()
        .security_policy(SecurityPolicy::preset("production").unwrap())
        .open()
        .await
        .unwrap();
    let code =
        "import json\n# import socket is only a comment\nimport os, subprocess\nprint('ran')";
    let error = session.run(code).await.unwrap_err();
    let Error::SecurityViolation { violations } = &error else {
        panic!("{error}")
    };
    let lines: Vec<usize> = violations.iter().map(|v| v.line).collect();
    assert_eq!(lines, [3, 3], "{error}");
    assert!(error.to_string().contains("line 3"), "{error}");
    // The blocked code never ran, and the session goes on.
    assert_eq!(session.run("print('ok')").await.unwrap().stdout, "ok\n");

    let (safe, again) = session.is_safe(code);
    assert!(!safe);
    assert_eq!(&again, violations, "checking twice gives the same answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_advisory_policy_runs_the_code_and_a_custom_policy_applies() {
    let mut policy = SecurityPolicy::new(SecurityIssueSeverity::Medium);
    policy.add_pattern(
        SecurityPattern::new(
            r"\beval\(",
            "dynamic evaluation",
            SecurityIssueSeverity::High,
        )
        .unwrap(),
    );
    policy.add_restricted_module(RestrictedModule::new(
        "socket",
        "network",
        SecurityIssueSeverity::Low,
    ));
    let session = SandboxSession::builder()
        .security_policy(policy.clone())
        .open()
        .await
        .unwrap();
    // Low is below the threshold: allowed. The pattern is high: blocked.
    assert_eq!(
        session
            .run("import socket\nprint('net')")
            .await
            .unwrap()
            .stdout,
        "net\n"
    );
    assert!(matches!(
        session.run("print(eval('1+1'))").await,
        Err(Error::SecurityViolation { .. })
    ));

    let advisory = SandboxSession::builder()
        .security_policy(policy)
        .policy_advisory(true)
        .open()
        .await
        .unwrap();
    assert_eq!(
        advisory.run("print(eval('1+1'))").await.unwrap().stdout,
        "2\n"
    );
    assert!(SecurityPattern::new("eval((", "broken", SecurityIssueSeverity::Low).is_err());
}
