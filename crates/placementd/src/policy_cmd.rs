//! `placementd policy defaults`: Placement's registered policy rules with their default
//! check strings, as a policy file (YAML) an operator can start from — what
//! `oslopolicy-sample-generator --namespace placement` prints for the real Placement. Every
//! rule is written commented out, so the printed file changes nothing until a line is
//! uncommented and edited (`--uncommented` writes them live, e.g. to script a test policy).

use clap::{Args, Subcommand};
use placement_api::Policy;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print every rule with its default check string (a sample policy.yaml).
    Defaults {
        /// Write the rules as live lines rather than comments.
        #[arg(long)]
        uncommented: bool,
    },
}

pub fn run(args: PolicyArgs) -> Result<(), String> {
    let PolicyCommand::Defaults { uncommented } = args.command;
    print!("{}", sample(uncommented));
    Ok(())
}

/// The sample file's text.
fn sample(uncommented: bool) -> String {
    let prefix = if uncommented { "" } else { "#" };
    let mut out = String::from(
        "# Placement's policy rules and their defaults (placementd policy defaults).\n\
         # Set [oslo_policy] policy_file to a file holding the rules you change.\n\n",
    );
    for rule in Policy::registered_rules() {
        for line in rule.description.lines() {
            out.push_str(&format!("# {line}\n"));
        }
        for (method, path) in rule.operations {
            out.push_str(&format!("# {method}  {path}\n"));
        }
        if !rule.scope_types.is_empty() {
            let scopes: Vec<String> = rule.scope_types.iter().map(|s| s.to_string()).collect();
            out.push_str(&format!("# Intended scope(s): {}\n", scopes.join(", ")));
        }
        if let Some(d) = &rule.deprecated {
            out.push_str(&format!(
                "# Deprecated default (still accepted with enforce_new_defaults = false): \
                 \"{}\"\n",
                d.check_str
            ));
        }
        out.push_str(&format!(
            "{prefix}\"{}\": \"{}\"\n\n",
            rule.name, rule.check_str
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sample;
    use placement_api::policy::PolicyOptions;

    #[test]
    fn the_sample_names_every_rule_and_loads_as_a_policy_file() {
        let text = sample(true);
        for rule in placement_api::Policy::registered_rules() {
            assert!(
                text.contains(&format!("\"{}\":", rule.name)),
                "{}",
                rule.name
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, &text).expect("write");
        let options = PolicyOptions {
            enforce_new_defaults: true,
            enforce_scope: true,
            policy_file: Some(path),
        };
        placement_api::Policy::load(&options).expect("the sample loads");
        assert!(sample(false).lines().filter(|l| l.starts_with('"')).count() == 0);
    }
}
