//! `workspace/executeCommand`: which handler runs each of Arca's commands
//! (PROTOCOL.md). Outside `handlers/`, so no handler file imports another
//! to reach a command.
//!
//! Every argument list is `[ { ... } ]`; `crate` may be omitted when the
//! workspace has exactly one crate. A command that takes time answers
//! later: the handler returns a future the loop runs in a task.

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::ExecuteCommandParams;

use crate::server::builds;
use crate::server::cancel;
use crate::server::command_args::{PushArgs, RunArgs, SbomArgs, resolve_crate, single_argument};
use crate::server::event::Answer;
use crate::server::ext::{BuildArgs, CancelArgs, SetDefaultsArgs};
use crate::server::handlers::{invalid_params, push, run, sbom, set_defaults};
use crate::server::state::State;

pub fn execute(state: &mut State, params: ExecuteCommandParams) -> jsonrpc::Result<Answer> {
    match params.command.as_str() {
        "arca.build" | "arca.package" => {
            let args: BuildArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            let kind = if params.command == "arca.build" {
                builds::Kind::Build
            } else {
                builds::Kind::Package
            };
            builds::start(state, kind, &dir, args)
        }
        "arca.cancel" => {
            let args: CancelArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            cancel::cancel_crate(state, &dir);
            Ok(Answer::Now(None))
        }
        "arca.buildLog" => {
            let args: RunArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            Ok(run::build_log(&dir))
        }
        "arca.sbom" => {
            let args: SbomArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            sbom::show(state, &dir, args)
        }
        "arca.run" | "arca.stop" => {
            let args: RunArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            if params.command == "arca.run" {
                run::start(state, &dir, args)
            } else {
                Ok(run::stop(state, &dir))
            }
        }
        "arca.setDefaults" => {
            let args: SetDefaultsArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            set_defaults::set_defaults(state, &dir, args)
        }
        "arca.push" => {
            let args: PushArgs = single_argument(&params.command, params.arguments)?;
            push::start(state, args)
        }
        other => Err(invalid_params(format!(
            "Unknown command `{other}`. Arca's commands are: {}.",
            crate::server::ext::COMMANDS.join(", ")
        ))),
    }
}
