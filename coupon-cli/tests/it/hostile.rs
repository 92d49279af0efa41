//! Hostile input: every bad flag, code, user id, pattern, CSV row and database URL is refused
//! with its documented exit status and error kind, never with a panic, and leaves the database
//! exactly as it was, and still usable.

use super::*;

/// One bad input and the answer the contract documents for it.
struct Case {
    /// Names the case in failure messages (the arguments may be 10,000 characters long).
    name: &'static str,
    /// The arguments after `--json`.
    args: Vec<String>,
    /// Standard input, for `codes import BOOK -`.
    stdin: Option<Vec<u8>>,
    /// The exit status.
    exit: i32,
    /// The error kind; `None` for a usage error (exit 2: clap's own message, no JSON) and for a
    /// success.
    kind: Option<&'static str>,
}

/// An exit status and, unless it is a usage error or a success, the error kind.
type Answer = (i32, Option<&'static str>);

const USAGE: Answer = (2, None);
const OK: Answer = (0, None);
const NOT_FOUND: Answer = (3, Some("not_found"));
const INVALID: Answer = (5, Some("invalid_input"));
const PATTERN: Answer = (5, Some("invalid_pattern"));
const INFEASIBLE: Answer = (5, Some("infeasible"));

fn case(name: &'static str, args: &[&str], (exit, kind): Answer) -> Case {
    Case {
        name,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        stdin: None,
        exit,
        kind,
    }
}

fn piped(name: &'static str, args: &[&str], stdin: &[u8], answer: Answer) -> Case {
    Case {
        stdin: Some(stdin.to_vec()),
        ..case(name, args, answer)
    }
}

const SQL: &str = "'; DROP TABLE codes; --";

/// `n` times `c`.
fn long(c: char, n: usize) -> String {
    c.to_string().repeat(n)
}

/// A file of raw bytes in the test's directory; its path.
fn file(env: &Env, name: &str, content: &[u8]) -> String {
    let path = env.path(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

/// Book 1 with a pattern, codes A-1, A-2 and A-3, A-1 assigned to ada.
fn seeded() -> Env {
    let env = Env::new();
    env.json(&[
        "book",
        "create",
        "--name",
        "Hostile",
        "--pattern",
        "S-[0-9]{6}",
        "--max-codes-per-user",
        "2",
    ]);
    let csv = env.write("seed.csv", "code\nA-1\nA-2\nA-3\n");
    env.json(&["codes", "import", "1", &csv]);
    env.json(&["assign", "--code", "A-1", "--user", "ada"]);
    env
}

/// Everything the database shows: books with their statistics, events, codes and ada's coupons.
fn snapshot(env: &Env) -> String {
    let mut all = String::new();
    for args in [
        &["--json", "book", "list"][..],
        &["--json", "book", "show", "1"],
        &["--json", "events", "--limit", "10000"],
        &["codes", "export", "1"],
        &["--json", "user", "coupons", "ada"],
    ] {
        let out = env.run(args);
        assert_eq!(
            status(&out),
            0,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        all.push_str(&String::from_utf8(out.stdout).unwrap());
    }
    all
}

/// The event log: every state change appends to it in the same transaction.
fn events(env: &Env) -> String {
    let out = env.run(&["--json", "events", "--limit", "10000"]);
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs one case and checks its answer and that the event log did not move.
fn check_case(env: &Env, case: &Case) {
    let name = case.name;
    let before = events(env);
    let mut args = vec!["--json"];
    args.extend(case.args.iter().map(String::as_str));
    let out = env.run_with(&args, case.stdin.as_deref());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stderr.contains("panicked"), "{name}: panicked: {stderr}");
    assert_eq!(
        status(&out),
        case.exit,
        "{name}: exit status; stdout {stdout}; stderr {stderr}"
    );
    match case.kind {
        Some(kind) => {
            assert!(out.stdout.is_empty(), "{name}: stdout {stdout}");
            let err: Value = serde_json::from_slice(&out.stderr)
                .unwrap_or_else(|e| panic!("{name}: stderr is not one JSON error ({e}): {stderr}"));
            assert_eq!(err["error"]["kind"], kind, "{name}: {stderr}");
            assert!(
                err["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.trim().is_empty()),
                "{name}: no message: {stderr}"
            );
        }
        None if case.exit == 2 => {
            assert!(!stderr.trim().is_empty(), "{name}: no usage message");
            assert!(out.stdout.is_empty(), "{name}: stdout {stdout}");
        }
        None => {
            serde_json::from_slice::<Value>(&out.stdout)
                .unwrap_or_else(|e| panic!("{name}: stdout is not JSON ({e}): {stdout}"));
        }
    }
    assert_eq!(events(env), before, "{name}: the event log changed");
}

/// Runs every case on a seeded database, then checks that nothing changed and that the database
/// still works.
fn check(cases: &[Case]) {
    let env = seeded();
    let before = snapshot(&env);
    for case in cases {
        check_case(&env, case);
    }
    assert_eq!(snapshot(&env), before, "the database changed");
    still_usable(&env);
}

/// One successful write after the hostile cases.
fn still_usable(env: &Env) {
    let coupon = env.json(&["assign", "--code", "a-2", "--user", "bob"]);
    assert_eq!(coupon["code"], "A-2");
    assert_eq!(coupon["user_id"], "bob");
    assert_eq!(env.json(&["book", "show", "1"])["stats"]["assigned"], 2);
}

#[test]
fn hostile_numbers_durations_times_and_flags() {
    let big_context = serde_json::json!({ "blob": long('x', 100 * 1024) }).to_string();
    let long_name = long('n', 300);
    let long_description = long('d', 10_001);
    let cases = [
        case(
            "--count -1",
            &["codes", "generate", "1", "--count", "-1"],
            USAGE,
        ),
        case(
            "--count above u64",
            &["codes", "generate", "1", "--count", "99999999999999999999"],
            USAGE,
        ),
        case(
            "--count 0",
            &["codes", "generate", "1", "--count", "0"],
            INVALID,
        ),
        case(
            "--count above the free space",
            &["codes", "generate", "1", "--count", "2000000"],
            INFEASIBLE,
        ),
        case(
            "--count too guessable",
            &["codes", "generate", "1", "--count", "5000"],
            INFEASIBLE,
        ),
        case(
            "--max-codes-per-user 0",
            &["book", "create", "--name", "X", "--max-codes-per-user", "0"],
            INVALID,
        ),
        case(
            "--max-codes-per-user -1",
            &[
                "book",
                "create",
                "--name",
                "X",
                "--max-codes-per-user",
                "-1",
            ],
            USAGE,
        ),
        case(
            "--max-codes-per-user above u32",
            &[
                "book",
                "create",
                "--name",
                "X",
                "--max-codes-per-user",
                "99999999999",
            ],
            INVALID,
        ),
        case(
            "--max-redemptions-per-user 0",
            &["book", "update", "1", "--max-redemptions-per-user", "0"],
            INVALID,
        ),
        case(
            "--max-redemptions-per-user above u32",
            &[
                "book",
                "create",
                "--name",
                "X",
                "--max-redemptions-per-user",
                "99999999999",
            ],
            USAGE,
        ),
        case(
            "--ttl 25h",
            &["lock", "A-1", "--user", "ada", "--ttl", "25h"],
            INVALID,
        ),
        case(
            "--ttl 1500ms",
            &["lock", "A-1", "--user", "ada", "--ttl", "1500ms"],
            INVALID,
        ),
        case(
            "--ttl -5m",
            &["lock", "A-1", "--user", "ada", "--ttl", "-5m"],
            USAGE,
        ),
        case(
            "--ttl overflowing",
            &[
                "lock",
                "A-1",
                "--user",
                "ada",
                "--ttl",
                "99999999999999999999s",
            ],
            INVALID,
        ),
        case(
            "--lock-ttl 0s",
            &["book", "update", "1", "--lock-ttl", "0s"],
            INVALID,
        ),
        case("book id -3", &["book", "show", "-3"], USAGE),
        case(
            "book id -3 after --",
            &["book", "show", "--", "-3"],
            NOT_FOUND,
        ),
        case("book id 0", &["book", "show", "0"], NOT_FOUND),
        case("book id abc", &["book", "show", "abc"], USAGE),
        case(
            "book id above i64",
            &["book", "show", "9223372036854775808"],
            USAGE,
        ),
        case(
            "--context {",
            &["redeem", "A-1", "--user", "ada", "--context", "{"],
            INVALID,
        ),
        case(
            "--context [1,2",
            &["redeem", "A-1", "--user", "ada", "--context", "[1,2"],
            INVALID,
        ),
        case(
            "--context of 100 KB",
            &["redeem", "A-1", "--user", "ada", "--context", &big_context],
            INVALID,
        ),
        case(
            "--valid-from tomorrow",
            &["book", "create", "--name", "X", "--valid-from", "tomorrow"],
            INVALID,
        ),
        case(
            "--valid-from without a time",
            &["book", "update", "1", "--valid-from", "2026-01-01"],
            INVALID,
        ),
        case(
            "--valid-until with a space",
            &[
                "book",
                "update",
                "1",
                "--valid-until",
                "2026-01-01 00:00:00",
            ],
            INVALID,
        ),
        case(
            "--valid-until month 13",
            &[
                "book",
                "create",
                "--name",
                "X",
                "--valid-until",
                "2026-13-45T00:00:00Z",
            ],
            INVALID,
        ),
        case(
            "--valid-from after --valid-until on create",
            &[
                "book",
                "create",
                "--name",
                "X",
                "--valid-from",
                "2030-01-01T00:00:00Z",
                "--valid-until",
                "2029-01-01T00:00:00Z",
            ],
            INVALID,
        ),
        case(
            "--valid-from after --valid-until on update",
            &[
                "book",
                "update",
                "1",
                "--valid-from",
                "2030-01-01T00:00:00Z",
                "--valid-until",
                "2029-01-01T00:00:00Z",
            ],
            INVALID,
        ),
        case(
            "unknown --state on export",
            &["codes", "export", "1", "--state", "bogus"],
            INVALID,
        ),
        case(
            "unknown --state on user coupons",
            &["user", "coupons", "ada", "--state", "bogus"],
            INVALID,
        ),
        case("--after -1", &["events", "--after", "-1"], USAGE),
        case("--limit 10001", &["events", "--limit", "10001"], INVALID),
        case(
            "--limit above usize",
            &["events", "--limit", "99999999999999999999999"],
            USAGE,
        ),
        case(
            "empty --name",
            &["book", "update", "1", "--name", ""],
            INVALID,
        ),
        case(
            "300-character --name",
            &["book", "create", "--name", &long_name],
            INVALID,
        ),
        case(
            "10,001-character --description",
            &["book", "update", "1", "--description", &long_description],
            INVALID,
        ),
        case(
            "unknown book for user coupons",
            &["user", "coupons", "ada", "--book", "99"],
            NOT_FOUND,
        ),
    ];
    check(&cases);
}

#[test]
fn hostile_codes_user_ids_and_keys() {
    let long_user = long('u', 10_000);
    let long_code = long('A', 10_000);
    let long_key = long('k', 10_000);
    let cases = [
        case("SQL as a code", &["show", SQL], INVALID),
        case("SQL as a code to void", &["codes", "void", SQL], INVALID),
        case("SQL as a user id, read only", &["user", "coupons", SQL], OK),
        case(
            "SQL as a book name with a bad limit",
            &["book", "create", "--name", SQL, "--max-codes-per-user", "0"],
            INVALID,
        ),
        case("BEL in a code", &["show", "A-1\u{7}"], INVALID),
        case(
            "newline inside a code",
            &["redeem", "A\n1", "--user", "ada"],
            INVALID,
        ),
        case(
            "BEL in a user id",
            &["assign", "1", "--user", "ada\u{7}"],
            INVALID,
        ),
        case(
            "tab in a user id",
            &["assign", "1", "--user", "ada\tb"],
            INVALID,
        ),
        case(
            "newline in a user id",
            &["assign", "1", "--user", "ada\nb"],
            INVALID,
        ),
        case(
            "surrounding space in a user id",
            &["lock", "A-1", "--user", " ada"],
            INVALID,
        ),
        case("empty user id", &["lock", "A-1", "--user", ""], INVALID),
        case("empty code", &["show", ""], INVALID),
        case(
            "10,000-character user id",
            &["assign", "1", "--user", &long_user],
            INVALID,
        ),
        case("10,000-character code", &["show", &long_code], INVALID),
        case(
            "10,000-character order id",
            &["redeem", "A-1", "--user", "ada", "--order-id", &long_key],
            INVALID,
        ),
        case(
            "10,000-character idempotency key",
            &[
                "assign",
                "1",
                "--user",
                "bob",
                "--idempotency-key",
                &long_key,
            ],
            INVALID,
        ),
        case(
            "BEL in a lock token",
            &["unlock", "A-1", "--token", "tok\u{7}"],
            INVALID,
        ),
        case("umlauts as a code", &["show", "ÄÖÜ"], INVALID),
        case(
            "umlauts as a user id",
            &["assign", "1", "--user", "ÄÖÜ"],
            INVALID,
        ),
        case(
            "emoji as a user id",
            &["assign", "1", "--user", "😀"],
            INVALID,
        ),
        case(
            "RTL mark in a user id",
            &["assign", "1", "--user", "\u{200F}ada"],
            INVALID,
        ),
        case(
            "RTL override in a code",
            &["assign", "--code", "A-1\u{202E}", "--user", "ada"],
            INVALID,
        ),
        case(
            "void with one unknown code",
            &["codes", "void", "A-2", "NOPE"],
            NOT_FOUND,
        ),
    ];
    check(&cases);
}

#[test]
fn hostile_patterns() {
    let cases: Vec<Case> = [
        ("star", "A*"),
        ("plus", "A+"),
        ("open range", "A{3,}"),
        ("anchor", "^A{3}"),
        ("word boundary", r"\bA{3}"),
        ("back-reference", r"(A)\1"),
        ("lower case", "a{3}"),
        ("case-insensitive flag", "(?i)A{3}"),
        ("Unicode class", r"\pL{3}"),
        ("word class", r"\w{3}"),
        ("can be empty", "A?"),
        ("longer than 64", "[A-Z]{65}"),
        ("nested repetition past 64", "[A-Z]{10}{10}{10}"),
        ("huge repetition", "A{99999999999}"),
        ("unclosed group", "("),
        ("umlaut", "Ä{3}"),
        ("SQL", SQL),
    ]
    .into_iter()
    .map(|(name, pattern)| {
        case(
            name,
            &["book", "create", "--name", "P", "--pattern", pattern],
            PATTERN,
        )
    })
    .chain([case(
        "unbounded pattern on update",
        &["book", "update", "1", "--pattern", "[A-Z]*"],
        PATTERN,
    )])
    .collect();
    check(&cases);
}

#[test]
fn hostile_csv_imports() {
    let env = Env::new();
    let import = |name: &'static str, file_name: &str, content: &[u8]| {
        let path = file(&env, file_name, content);
        case(name, &["codes", "import", "1", &path], INVALID)
    };
    let too_long = format!("code\nA-4\n{}\n", long('B', 65));
    let very_long = format!("A-4\n{}\n", long('C', 10_000));
    let mut cases = vec![
        import("invalid UTF-8", "utf8.csv", b"A-4\n\xff\xfe\nA-5\n"),
        import("a code with a space", "space.csv", b"code\nA-4\nbad code\n"),
        import("a 65-character code", "long.csv", too_long.as_bytes()),
        import(
            "a 10,000-character code",
            "longer.csv",
            very_long.as_bytes(),
        ),
        import(
            "columns without a code header",
            "cols.csv",
            b"A-4,1\nA-5,2\n",
        ),
        import("NUL in a row", "nul.csv", b"A-4\nX\0Y\n"),
        import("BEL in a row", "bel.csv", b"A-4\nX\x07Y\n"),
        import("tab inside a value", "tab.csv", b"code\nA\tB\n"),
        import(
            "a quoted value spanning lines",
            "quoted.csv",
            b"code\nA-4\n\"A-5\nA-6\"\n",
        ),
        import(
            "SQL in a row",
            "sql.csv",
            format!("code\nA-4\n{SQL}\n").as_bytes(),
        ),
        import(
            "non-ASCII rows",
            "utf.csv",
            "code\nA-4\nÄÖÜ\n😀\n\u{200F}A-7\n".as_bytes(),
        ),
    ];
    let dir = env.path("dir.csv");
    std::fs::create_dir(&dir).unwrap();
    let dir = dir.display().to_string();
    let columns = file(&env, "cols2.csv", b"A-4,1\nA-5,2\n");
    let space = file(&env, "space2.csv", b"A-4\nbad code\n");
    cases.extend([
        case(
            "columns without a code header, --skip-invalid",
            &["codes", "import", "1", &columns, "--skip-invalid"],
            INVALID,
        ),
        case(
            "a directory as the file",
            &["codes", "import", "1", &dir],
            INVALID,
        ),
        case(
            "a file that does not exist",
            &[
                "codes",
                "import",
                "1",
                &env.path("missing.csv").display().to_string(),
            ],
            INVALID,
        ),
        piped(
            "invalid UTF-8 on standard input",
            &["codes", "import", "1", "-"],
            b"code\nA-9\n\xff\n",
            INVALID,
        ),
        piped(
            "SQL on standard input",
            &["codes", "import", "1", "-"],
            format!("{SQL}\n").as_bytes(),
            INVALID,
        ),
        case(
            "import into an unknown book",
            &["codes", "import", "99", &space],
            NOT_FOUND,
        ),
        case(
            "import into book abc",
            &["codes", "import", "abc", &space],
            USAGE,
        ),
    ]);
    check(&cases);
}

#[test]
fn hostile_database_urls() {
    let env = seeded();
    let before = snapshot(&env);
    let dir = env.path("dir.db");
    std::fs::create_dir(&dir).unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 13) as u8).collect();
    let garbage_path = file(&env, "garbage.db", &garbage);
    let text_path = env.write("text.db", "hello, this is not a database\n");
    let missing = env.path("missing").join("sub").join("c.db");
    let urls: [(&str, String, Answer); 6] = [
        (
            "a directory",
            dir.display().to_string(),
            (1, Some("backend")),
        ),
        (
            "a directory as sqlite://",
            format!("sqlite://{}", dir.display()),
            (1, Some("backend")),
        ),
        ("a garbage file", garbage_path.clone(), (1, Some("backend"))),
        ("a text file", text_path.clone(), (1, Some("backend"))),
        (
            "a missing parent directory",
            missing.display().to_string(),
            (1, Some("backend")),
        ),
        ("an empty URL", String::new(), INVALID),
    ];
    for (name, url, (exit, kind)) in urls {
        let mut other = Env::new();
        other.url = url;
        let out = other.run(&["--json", "book", "create", "--name", "X"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name}: panicked: {stderr}");
        assert_eq!(status(&out), exit, "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}");
        let err: Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|e| panic!("{name}: stderr is not one JSON error ({e}): {stderr}"));
        assert_eq!(err["error"]["kind"], kind.unwrap(), "{name}: {stderr}");
    }
    assert_eq!(
        std::fs::read(&garbage_path).unwrap(),
        garbage,
        "the garbage file changed"
    );
    assert_eq!(
        std::fs::read_to_string(&text_path).unwrap(),
        "hello, this is not a database\n"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "files in the directory"
    );
    assert!(
        !env.path("missing").exists(),
        "the missing directory was created"
    );
    assert_eq!(snapshot(&env), before, "the database changed");
    still_usable(&env);
}

/// `codes generate 1 --count N` with N above `i64::MAX` (the pattern has 1,000,000 codes) is
/// refused as `infeasible`; it once overflowed doubling the count.
#[test]
fn generate_with_a_count_above_i64_max_is_refused() {
    check(&[
        case(
            "--count 2^63",
            &["codes", "generate", "1", "--count", "9223372036854775808"],
            INFEASIBLE,
        ),
        case(
            "--count u64::MAX, guessable allowed",
            &[
                "codes",
                "generate",
                "1",
                "--count",
                "18446744073709551615",
                "--allow-guessable",
            ],
            INFEASIBLE,
        ),
    ]);
}

/// A quoted field that is never closed is an invalid row (the csv reader alone would read it
/// to the end of the file and import it as a code), so the import is refused.
#[test]
fn csv_with_an_unterminated_quote_is_refused() {
    let env = Env::new();
    let path = file(&env, "open.csv", b"code\nA-4\n\"unterminated\n");
    check(&[case(
        "an unterminated quote",
        &["codes", "import", "1", &path],
        INVALID,
    )]);
}
