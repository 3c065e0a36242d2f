//! One module per command; each is a clap struct plus `run`.

mod apps;
mod buildpacks;
mod builds;
mod config;
mod deploy;
mod domains;
mod edge;
mod git;
mod healthcheck;
mod kv;
mod login;
mod logs;
mod maintenance;
mod new;
mod nodes;
mod ps;
mod releases;
mod rename;
mod run;
mod server;
mod target;
mod up;

/// The top-level commands.
#[derive(clap::Subcommand)]
pub enum Command {
    Up(up::Up),
    New(new::New),
    Server(Box<server::Server>),
    Login(login::Login),
    #[command(name = "auth:whoami")]
    AuthWhoami(login::Whoami),
    #[command(name = "logout", alias = "auth:logout")]
    Logout(login::Logout),
    Apps(apps::Apps),
    #[command(name = "apps:create")]
    AppsCreate(apps::Create),
    #[command(name = "apps:info")]
    AppsInfo(apps::Info),
    #[command(name = "apps:destroy")]
    AppsDestroy(apps::Destroy),
    #[command(name = "apps:rename")]
    AppsRename(rename::Rename),
    Deploy(deploy::Deploy),
    Builds(builds::Builds),
    #[command(name = "builds:output")]
    BuildsOutput(builds::Output),
    Buildpacks(buildpacks::Buildpacks),
    #[command(name = "buildpacks:set")]
    BuildpacksSet(buildpacks::Set),
    #[command(name = "buildpacks:clear")]
    BuildpacksClear(buildpacks::Clear),
    Config(config::Config),
    #[command(name = "config:get")]
    ConfigGet(config::Get),
    #[command(name = "config:set")]
    ConfigSet(config::Set),
    #[command(name = "config:unset")]
    ConfigUnset(config::Unset),
    #[command(name = "config:pull")]
    ConfigPull(config::Pull),
    #[command(name = "config:edit")]
    ConfigEdit(config::Edit),
    Releases(releases::Releases),
    #[command(name = "releases:info")]
    ReleasesInfo(releases::ReleaseInfo),
    #[command(name = "releases:output")]
    ReleasesOutput(releases::Output),
    Rollback(releases::Rollback),
    Healthcheck(healthcheck::Show),
    #[command(name = "healthcheck:set")]
    HealthcheckSet(healthcheck::Set),
    Maintenance(maintenance::Show),
    #[command(name = "maintenance:on")]
    MaintenanceOn(maintenance::On),
    #[command(name = "maintenance:off")]
    MaintenanceOff(maintenance::Off),
    Run(run::Run),
    Logs(logs::Logs),
    Ps(ps::Ps),
    #[command(name = "ps:scale")]
    PsScale(ps::Scale),
    #[command(name = "ps:restart")]
    PsRestart(ps::Restart),
    #[command(name = "ps:stop")]
    PsStop(ps::Stop),
    #[command(name = "ps:autoscale")]
    PsAutoscale(ps::Autoscale),
    #[command(name = "ps:autoscale:disable")]
    PsAutoscaleDisable(ps::AutoscaleDisable),
    #[command(name = "ps:limits")]
    PsLimits(ps::Limits),
    Nodes(nodes::Nodes),
    Domains(domains::Domains),
    #[command(name = "domains:add")]
    DomainsAdd(domains::Add),
    #[command(name = "domains:remove")]
    DomainsRemove(domains::Remove),
    #[command(name = "domains:clear")]
    DomainsClear(domains::Clear),
    #[command(name = "kv")]
    Kv(kv::List),
    #[command(name = "kv:list")]
    KvList(kv::List),
    #[command(name = "kv:info")]
    KvInfo(kv::Info),
    #[command(name = "kv:create")]
    KvCreate(kv::Create),
    #[command(name = "kv:destroy")]
    KvDestroy(kv::Destroy),
    #[command(name = "kv:get")]
    KvGet(kv::Get),
    #[command(name = "kv:set")]
    KvSet(kv::Set),
    #[command(name = "kv:delete")]
    KvDelete(kv::Delete),
    #[command(name = "git:remote")]
    GitRemote(git::Remote),
    #[command(name = "git-credential", hide = true)]
    GitCredential(git::Credential),
    #[command(name = "git-hook", hide = true)]
    GitHook(git::Hook),
}

impl Command {
    pub fn run(self) -> anyhow::Result<()> {
        self.dispatch().map_err(target::explain)
    }

    fn dispatch(self) -> anyhow::Result<()> {
        match self {
            Command::Up(cmd) => cmd.run(),
            Command::New(cmd) => cmd.run(),
            Command::Server(cmd) => (*cmd).run(),
            Command::Login(cmd) => cmd.run(),
            Command::AuthWhoami(cmd) => cmd.run(),
            Command::Logout(cmd) => cmd.run(),
            Command::Apps(cmd) => cmd.run(),
            Command::AppsCreate(cmd) => cmd.run(),
            Command::AppsInfo(cmd) => cmd.run(),
            Command::AppsDestroy(cmd) => cmd.run(),
            Command::AppsRename(cmd) => cmd.run(),
            Command::Deploy(cmd) => cmd.run(),
            Command::Builds(cmd) => cmd.run(),
            Command::BuildsOutput(cmd) => cmd.run(),
            Command::Buildpacks(cmd) => cmd.run(),
            Command::BuildpacksSet(cmd) => cmd.run(),
            Command::BuildpacksClear(cmd) => cmd.run(),
            Command::Config(cmd) => cmd.run(),
            Command::ConfigGet(cmd) => cmd.run(),
            Command::ConfigSet(cmd) => cmd.run(),
            Command::ConfigUnset(cmd) => cmd.run(),
            Command::ConfigPull(cmd) => cmd.run(),
            Command::ConfigEdit(cmd) => cmd.run(),
            Command::Releases(cmd) => cmd.run(),
            Command::ReleasesInfo(cmd) => cmd.run(),
            Command::ReleasesOutput(cmd) => cmd.run(),
            Command::Rollback(cmd) => cmd.run(),
            Command::Healthcheck(cmd) => cmd.run(),
            Command::HealthcheckSet(cmd) => cmd.run(),
            Command::Maintenance(cmd) => cmd.run(),
            Command::MaintenanceOn(cmd) => cmd.run(),
            Command::MaintenanceOff(cmd) => cmd.run(),
            Command::Run(cmd) => cmd.run(),
            Command::Logs(cmd) => cmd.run(),
            Command::Ps(cmd) => cmd.run(),
            Command::PsScale(cmd) => cmd.run(),
            Command::PsRestart(cmd) => cmd.run(),
            Command::PsStop(cmd) => cmd.run(),
            Command::PsAutoscale(cmd) => cmd.run(),
            Command::PsAutoscaleDisable(cmd) => cmd.run(),
            Command::PsLimits(cmd) => cmd.run(),
            Command::Nodes(cmd) => cmd.run(),
            Command::Domains(cmd) => cmd.run(),
            Command::DomainsAdd(cmd) => cmd.run(),
            Command::Kv(cmd) | Command::KvList(cmd) => cmd.run(),
            Command::KvInfo(cmd) => cmd.run(),
            Command::KvCreate(cmd) => cmd.run(),
            Command::KvDestroy(cmd) => cmd.run(),
            Command::KvGet(cmd) => cmd.run(),
            Command::KvSet(cmd) => cmd.run(),
            Command::KvDelete(cmd) => cmd.run(),
            Command::DomainsRemove(cmd) => cmd.run(),
            Command::DomainsClear(cmd) => cmd.run(),
            Command::GitRemote(cmd) => cmd.run(),
            Command::GitCredential(cmd) => cmd.run(),
            Command::GitHook(cmd) => cmd.run(),
        }
    }
}
