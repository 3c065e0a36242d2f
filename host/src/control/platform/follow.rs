//! A cluster node follows the cluster. Every round (a tick, or a change
//! in the store) [`Platform::follow_cluster`]:
//!
//! 1. on the leader only, places every deployed app's replicas on the
//!    live nodes ([`crate::cluster::placement::place`]) and stores the
//!    placement when it changed;
//! 2. on every node, makes what runs here match it: each app is routed
//!    (with its domains), keeps the slug of its current release (fetched
//!    from a peer and checked against its sha256, whether or not a replica
//!    is placed here, so replicas can move here after the node that built
//!    it died), runs the replicas placed here — `web.2` and `web.4`, say —
//!    loading the release when it is new to this node, and knows which
//!    other nodes run its `web`, for the router to forward to.
//!
//! An app being changed through this node (its lock held) is left for the
//! next round. Apps destroyed through another node are removed here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use wpaas_api::nodes::Node;

use super::formation::{is_long_running, limits_for};
use super::Platform;
use crate::cluster::placement::{place, NodeCapacity, Placement};
use crate::cluster::schedule;
use crate::control::scaler::AppLoad;
use crate::control::store::{App, Release, StoreError};
use crate::router::{AppRoute, Peer};

/// What one round reads from the cluster.
struct Round {
    nodes: Vec<Node>,
    placement: Placement,
    apps: Vec<(App, Option<Release>)>,
}

impl Platform {
    /// One round of following the cluster (see the module docs). Nothing
    /// to do outside a cluster.
    pub async fn follow_cluster(&self) -> Result<()> {
        let Some((me, Some(membership))) = self.node.get() else {
            return Ok(());
        };
        let me = me.name.clone();
        let membership = membership.clone();
        let store = self.store.clone();
        let leader_name = me.clone();
        let round = tokio::task::spawn_blocking(move || -> Result<Round> {
            let nodes = membership.nodes()?;
            let mut apps = Vec::new();
            for app in store.apps()? {
                let release = store.current_release(&app.name)?;
                apps.push((app, release));
            }
            let mut placement = schedule::read(membership.etcd())?;
            if membership.is_leader() {
                let capacity: Vec<NodeCapacity> = nodes
                    .iter()
                    .map(|n| NodeCapacity {
                        name: n.name.clone(),
                        slots: n.slots,
                        memory_bytes: n.memory_bytes,
                    })
                    .collect();
                let deployed: Vec<(App, Release)> = apps
                    .iter()
                    .filter_map(|(a, r)| Some((a.clone(), r.clone()?)))
                    .collect();
                let plan = place(&capacity, &schedule::demands(&deployed), &placement);
                for ((app, kind), missing) in &plan.pending {
                    tracing::warn!(app, "{missing} replica(s) of {kind} fit on no node");
                }
                if plan.placement != placement
                    && schedule::publish(membership.etcd(), &leader_name, &plan.placement)?
                {
                    placement = plan.placement;
                }
            }
            Ok(Round {
                nodes,
                placement,
                apps,
            })
        })
        .await
        .map_err(|e| anyhow!("reading the cluster panicked: {e}"))??;
        *self.placement.lock().expect("placement") = round.placement.clone();
        self.follow(&me, round).await;
        Ok(())
    }

    /// Makes this node run what `round` places on it.
    async fn follow(&self, me: &str, round: Round) {
        let routers: HashMap<&str, std::net::SocketAddr> = round
            .nodes
            .iter()
            .filter_map(|n| Some((n.name.as_str(), n.router.parse().ok()?)))
            .collect();
        let known: HashSet<&str> = round.apps.iter().map(|(a, _)| a.name.as_str()).collect();
        for name in self.table.app_names() {
            if !known.contains(name.as_str()) {
                self.forget_if_destroyed(&name).await;
            }
        }
        for (app, release) in &round.apps {
            if self.table.app(&app.name).is_none() {
                self.app_created(app);
            }
            let domains: Vec<String> = app
                .domains
                .iter()
                .filter(|d| super::super::store::reserved_domain(d).is_none())
                .cloned()
                .collect();
            self.table.set_domains(&app.name, &domains);
            self.maintenance_changed(app);
            self.note_autoscale(app);
            let web_nodes = round
                .placement
                .get(&(app.name.clone(), "web".to_string()))
                .cloned()
                .unwrap_or_default();
            // Replicas placed here start before the router stops
            // forwarding to the nodes that had them.
            if let Some(_guard) = self.try_lock(&app.name) {
                let result = match release {
                    Some(release) => self.run_placed(app, release, me, &round).await,
                    None => Ok(()),
                };
                if let Err(err) = result {
                    tracing::error!(app = %app.name, "could not run what is placed here: {err:#}");
                }
            }
            self.table
                .set_peers(&app.name, peers(&web_nodes, me, &routers));
        }
    }

    /// Removes `app` from this node if the store no longer has it.
    async fn forget_if_destroyed(&self, app: &str) {
        let Some(_guard) = self.try_lock(app) else {
            return;
        };
        if matches!(self.store.app(app), Err(StoreError::NoSuchApp(_))) {
            self.app_destroyed(app);
        }
    }

    /// Runs the replicas of `release` that `round` places on `me`.
    async fn run_placed(
        &self,
        app: &App,
        release: &Release,
        me: &str,
        round: &Round,
    ) -> Result<()> {
        let mine = |kind: &str| -> Vec<usize> {
            round
                .placement
                .get(&(app.name.clone(), kind.to_string()))
                .map(|nodes| {
                    nodes
                        .iter()
                        .enumerate()
                        .filter(|(_, node)| *node == me)
                        .map(|(i, _)| i + 1)
                        .collect()
                })
                .unwrap_or_default()
        };
        let wanted: BTreeMap<&str, Vec<usize>> = release
            .process_types
            .iter()
            .filter(|(kind, _)| kind != "release")
            .map(|(kind, _)| (kind.as_str(), mine(kind)))
            .collect();
        // Every node keeps every current slug, placed here or not, so that
        // replicas can move to any node even after the node that built the
        // release is gone.
        if let Some(slug) = &release.slug {
            self.fetch_slug(slug, me, &round.nodes).await?;
        }
        // web
        let web_here = wanted.get("web").cloned().unwrap_or_default();
        let route = self.table.app(&app.name);
        let running = route.as_ref().and_then(|r| r.web.clone());
        let same_release =
            self.serving.lock().expect("serving").get(&app.name) == Some(&release.version);
        match (web_here.is_empty(), running) {
            (true, Some(_)) => self.table.set_app(AppRoute {
                name: app.name.clone(),
                web: None,
            }),
            (false, Some(web)) if same_release => {
                if web.replica_numbers() != web_here {
                    web.set_replica_numbers(&web_here);
                }
            }
            (false, _) => {
                let web = self.load_web(app, release).await?;
                web.set_replica_numbers(&web_here);
                self.table.set_app(AppRoute {
                    name: app.name.clone(),
                    web: Some(Arc::new(web)),
                });
                self.note_serving(&app.name, release.version);
            }
            (true, None) => {}
        }
        // Workers: as many as are placed here (numbered from 1 on each node).
        for (kind, numbers) in wanted.iter().filter(|(k, _)| is_long_running(k)) {
            let n = numbers.len();
            if n == 0 {
                self.supervisor.stop(&app.name, kind);
                continue;
            }
            let running = self.supervisor.command(&app.name, kind, release.version);
            if running.is_some() && self.supervisor.status(&app.name, kind).len() == n {
                continue;
            }
            let (command, env) = match running {
                Some(command) => (command, self.process(release, kind)?.2),
                None => self.command(release, kind, limits_for(app, kind)).await?,
            };
            self.supervisor
                .set(&app.name, kind, release.version, command, env, n);
        }
        let kinds: Vec<&str> = wanted
            .keys()
            .copied()
            .filter(|k| is_long_running(k))
            .collect();
        self.supervisor.retain(&app.name, &kinds);
        Ok(())
    }

    /// Shares this node's load of its autoscaled apps; on the leader, the
    /// loads every node shared (`None` elsewhere).
    pub async fn report_load(
        &self,
        here: HashMap<String, AppLoad>,
    ) -> Result<Option<Vec<HashMap<String, AppLoad>>>> {
        let Some((me, Some(membership))) = self.node.get() else {
            return Ok(None);
        };
        let (me, membership) = (me.name.clone(), membership.clone());
        tokio::task::spawn_blocking(move || {
            let etcd = membership.etcd();
            schedule::report_load(etcd, &me, serde_json::to_vec(&here)?)?;
            if !membership.is_leader() {
                return Ok(None);
            }
            let loads = schedule::loads(etcd)?
                .iter()
                .filter_map(|bytes| serde_json::from_slice(bytes).ok())
                .collect();
            Ok(Some(loads))
        })
        .await
        .map_err(|e| anyhow!("sharing the load panicked: {e}"))?
    }

    /// The cluster's autoscaler: `web` of `app` should run `replicas`.
    pub fn set_autoscaled_replicas(&self, app: &str, replicas: u32) -> Result<()> {
        self.store.update_app(app, |record| {
            record.formation.insert("web".into(), replicas);
        })?;
        Ok(())
    }

    /// Records that `app`'s local `web` runs `version`.
    pub(super) fn note_serving(&self, app: &str, version: u32) {
        self.serving
            .lock()
            .expect("serving")
            .insert(app.to_string(), version);
    }

    /// In a cluster, makes sure slug `digest` is stored here before a
    /// change through this node uses it (a `config:set` or rollback of a
    /// release built on another node). Outside a cluster, or if it is
    /// here, nothing to do.
    pub(crate) async fn ensure_slug(&self, digest: &str) -> Result<()> {
        let Some((me, Some(membership))) = self.node.get() else {
            return Ok(());
        };
        if self.store.slug_path(digest).is_some() {
            return Ok(());
        }
        let membership = membership.clone();
        let nodes = tokio::task::spawn_blocking(move || membership.nodes())
            .await
            .map_err(|e| anyhow!("listing nodes panicked: {e}"))??;
        self.fetch_slug(digest, &me.name, &nodes).await
    }

    /// Makes sure slug `digest` is stored here: fetched from the first
    /// other node that has it, and kept only if its sha256 is `digest`.
    async fn fetch_slug(&self, digest: &str, me: &str, nodes: &[Node]) -> Result<()> {
        if self.store.slug_path(digest).is_some() {
            return Ok(());
        }
        let token = self
            .cluster_token
            .get()
            .cloned()
            .ok_or_else(|| anyhow!("no cluster token"))?;
        let mut errors = Vec::new();
        for node in nodes.iter().filter(|n| n.name != me) {
            match self.fetch_slug_from(digest, &node.api, &token).await {
                Ok(()) => {
                    tracing::info!(node = %node.name, "fetched slug {digest}");
                    return Ok(());
                }
                Err(err) => errors.push(format!("{}: {err:#}", node.name)),
            }
        }
        bail!(
            "slug {digest} is on no reachable node ({})",
            errors.join("; ")
        )
    }

    async fn fetch_slug_from(&self, digest: &str, api: &str, token: &str) -> Result<()> {
        if self.config.tls.is_some() {
            bail!("fetching slugs over TLS is not supported yet");
        }
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let request = hyper::Request::get(format!("http://{api}/slugs/{digest}"))
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(http_body_util::Empty::new())?;
        let response = client.request(request).await?;
        if !response.status().is_success() {
            bail!("answered {}", response.status());
        }
        let tmp_dir = self.store.home().tmp();
        std::fs::create_dir_all(&tmp_dir)?;
        let path = tmp_dir.join(format!("slug-{}.part", uuid::Uuid::new_v4()));
        let checked = self.receive_slug(response.into_body(), &path, digest).await;
        match checked {
            // Moved into the store (unpinned: the release it is for keeps it).
            Ok(()) => crate::control::store::off_worker(|| self.adopt_slug(&path)).map(drop),
            Err(err) => {
                // Whatever went wrong, nothing half-received is left behind.
                let _ = std::fs::remove_file(&path);
                Err(err)
            }
        }
    }

    /// Writes a fetched slug to `path`, within the size this node accepts,
    /// and checks that its sha256 is `digest`.
    async fn receive_slug(
        &self,
        mut body: hyper::body::Incoming,
        path: &std::path::Path,
        digest: &str,
    ) -> Result<()> {
        let mut file = std::fs::File::create(path)
            .with_context(|| format!("could not create {}", path.display()))?;
        let mut hasher = Sha256::new();
        let max = self.config.max_slug.saturating_mul(2).max(1 << 20);
        let mut size = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(data) = frame.data_ref() {
                size += data.len() as u64;
                if size > max {
                    bail!("the slug is larger than this node accepts");
                }
                hasher.update(data);
                file.write_all(data)?;
            }
        }
        file.sync_all()?;
        let got = hex::encode(hasher.finalize());
        if got != digest {
            bail!("its sha256 is {got}, not {digest}: not used");
        }
        Ok(())
    }
}

/// The other nodes in `web_nodes` (replica order) with how many replicas
/// each runs, those whose router address is known.
fn peers(
    web_nodes: &[String],
    me: &str,
    routers: &HashMap<&str, std::net::SocketAddr>,
) -> Vec<Peer> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for node in web_nodes.iter().filter(|n| n.as_str() != me) {
        *counts.entry(node).or_default() += 1;
    }
    counts
        .into_iter()
        .filter_map(|(node, replicas)| {
            Some(Peer {
                node: node.to_string(),
                router: *routers.get(node)?,
                replicas,
            })
        })
        .collect()
}
