//! placeholder until the CLI lands
pub fn run(_args: Vec<String>) -> std::process::ExitCode {
    eprintln!("the nuage client is not built yet");
    std::process::ExitCode::FAILURE
}
