//! Placement's program names. Deployment tools (kolla-ansible, openstack-helm) run
//! `placement-manage db sync` and `placement-status upgrade check`; a symlink of the
//! placementd binary under either name is that program (the name is the file name of
//! `argv[0]`), the same as `placementd manage …` and `placementd status …`.

use std::path::Path;

use clap::Parser;

use crate::manage::{self, ManageCli};
use crate::status_cmd::{self, StatusCli};

/// Runs the program `argv[0]` names, if it is one of Placement's; returns its exit status.
pub async fn run_as_named() -> Option<u8> {
    let argv0 = std::env::args_os().next()?;
    let name = Path::new(&argv0).file_name()?.to_str()?.to_string();
    match program(&name)? {
        Program::Manage => Some(manage::run(ManageCli::parse().args)),
        Program::Status => Some(status_cmd::run(StatusCli::parse().args).await),
    }
}

/// The programs a symlink may name.
#[derive(Debug, PartialEq, Eq)]
enum Program {
    Manage,
    Status,
}

fn program(file_name: &str) -> Option<Program> {
    match file_name {
        "placement-manage" => Some(Program::Manage),
        "placement-status" => Some(Program::Status),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_placements_own_names_are_recognised() {
        assert_eq!(program("placement-manage"), Some(Program::Manage));
        assert_eq!(program("placement-status"), Some(Program::Status));
        for other in ["placementd", "placement-api", "placement-manage.sh", ""] {
            assert_eq!(program(other), None, "{other}");
        }
    }
}
