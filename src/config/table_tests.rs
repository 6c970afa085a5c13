//! Tests of the `[run]` and `[live]` tables through the whole checker and
//! the editor assists: they sit above the tables' own files, which import
//! neither (so no import circle runs through a test).

mod run {
    use crate::config::finding::{Code, Finding};
    use crate::config::run::parse;
    use crate::engine::GpuRequest;

    fn findings(text: &str) -> Vec<Finding> {
        crate::config::checker::check(text, None)
            .into_iter()
            .filter(|finding| finding.code != Code::MissingSetting)
            .collect()
    }

    #[test]
    fn a_good_run_table_parses_and_checks_clean() {
        let text = "[run]\nargs = [\"--port\", \"8080\"]\nenv = { RUST_LOG = \"info\" }\nports = [\"8080:80\", \"53/udp\"]\ngpus = \"all\"\n";
        assert_eq!(findings(text), Vec::new());
        let config = parse(text);
        assert_eq!(config.args, vec!["--port", "8080"]);
        assert_eq!(config.env, vec![("RUST_LOG".into(), "info".into())]);
        assert_eq!(config.ports.len(), 2);
        assert_eq!(config.ports[0].host, Some(8080));
        assert_eq!(config.ports[1].protocol, "udp");
        assert_eq!(config.gpus, Some(GpuRequest::All));
        assert_eq!(parse("[run]\ngpus = 2\n").gpus, Some(GpuRequest::Count(2)));
    }

    #[test]
    fn bad_values_are_located_errors() {
        let text = "[run]\nports = [\"80:http\"]\ngpus = \"some\"\nenv = { 1X = \"a\", OK = 1 }\ncolour = 1\n";
        let found = findings(text);
        let messages: Vec<_> = found.iter().map(|f| f.message.as_str()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("`http` is not a number")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("write \"all\" or a number")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("`1X` is not a valid")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("value of `OK` must be a string")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("Unknown key `colour`")),
            "{messages:?}"
        );
        let port = found.iter().find(|f| f.message.contains("http")).unwrap();
        assert_eq!(&text[port.span.clone()], "\"80:http\"");
        assert!(
            findings("[run]\ngpus = 0\n")[0]
                .message
                .contains("not a positive number")
        );
        assert!(findings("run = 3\n")[0].message.contains("must be a table"));
    }

    #[test]
    fn a_nul_cannot_be_smuggled_into_args_or_env() {
        let text = "[run]\nargs = [\"ok\", \"a\\u0000--privileged\"]\nenv = { A = \"x\\u0000y\", B = \"fine\" }\n";
        let found = findings(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|f| f.message.contains("NUL")), "{found:?}");
        assert_eq!(&text[found[0].span.clone()], "\"a\\u0000--privileged\"");
        assert_eq!(&text[found[1].span.clone()], "\"x\\u0000y\"");
        assert!(found[1].message.contains("`A`"), "{}", found[1].message);
        // A name with a newline, a space or an `=` would reach the engine as
        // another variable: an error on the name, dots and dashes are fine.
        let text = "[run.env]\n\"A\\nPATH\" = \"x\"\n\"B C\" = \"y\"\n\"D=E\" = \"z\"\n\"spring.profiles-active\" = \"prod\"\n";
        let found = findings(text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found
                .iter()
                .all(|f| f.message.contains("not a valid environment variable name")),
            "{found:?}"
        );
        assert!(
            found[0].message.contains("A\\nPATH"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn run_keys_complete_and_hover() {
        use crate::config::assist;
        let text = "[rust]\nprofile = \"release\"\n\n[run]\nargs = []\n";
        let labels: Vec<String> = assist::completions(text, text.len(), None)
            .into_iter()
            .map(|item| item.label)
            .collect();
        assert_eq!(
            labels,
            vec!["env", "ports", "gpus"],
            "args is already there"
        );
        let header = "[rust]\nprofile = \"release\"\n[r";
        let labels: Vec<String> = assist::completions(header, header.len(), None)
            .into_iter()
            .map(|item| item.label)
            .collect();
        assert!(labels.contains(&"run".to_owned()), "{labels:?}");
        let gpus = "[run]\ngpus = ";
        let values = assist::completions(gpus, gpus.len(), None);
        assert_eq!(values[0].insert_text, "\"all\"");
        let at = text.find("args").unwrap() + 1;
        let hover = assist::hover(text, at, None).expect("hover on args");
        assert!(hover.markdown.contains("**args**"), "{}", hover.markdown);
        let at = text.find("[run]").unwrap() + 2;
        assert!(
            assist::hover(text, at, None)
                .expect("hover on [run]")
                .markdown
                .contains("**[run]**")
        );
    }
}

mod live {
    use crate::config::finding::Code;
    use crate::config::live::parse;

    fn findings(text: &str) -> Vec<(Code, String)> {
        crate::config::checker::check(text, None)
            .into_iter()
            .map(|finding| (finding.code, text[finding.span].to_owned()))
            .collect()
    }

    #[test]
    fn image_on_exit_is_read_and_bad_values_are_located() {
        let base =
            "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"debian:bookworm-slim\"\n";
        assert!(parse(&format!("{base}[live]\nimage = \"on-exit\"\n")).image_on_exit);
        assert!(!parse(&format!("{base}[live]\nimage = \"never\"\n")).image_on_exit);
        assert!(!parse(base).image_on_exit);
        assert_eq!(
            findings(&format!("{base}[live]\nimage = \"on-exit\"\n")),
            vec![]
        );
        assert_eq!(
            findings(&format!("{base}[live]\nimage = \"always\"\n")),
            vec![(Code::InvalidType, "\"always\"".to_owned())]
        );
        assert_eq!(
            findings(&format!("{base}[live]\nimages = \"on-exit\"\n")),
            vec![(Code::UnknownKey, "images".to_owned())]
        );
        assert_eq!(
            findings(&format!("live = 1\n{base}")),
            vec![(Code::InvalidType, "1".to_owned())]
        );
    }
}
