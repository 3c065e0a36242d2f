//! The routing table: which app answers for a Host header.
//!
//! Kept apart from the runtime so the control plane can swap an app's entry
//! atomically (a new release) without touching requests in flight: they hold
//! an `Arc` to the entry they started on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::runtime::WebProcess;

/// One app as the router sees it.
pub struct AppRoute {
    /// The app's name (`NAME.localhost` reaches it).
    pub name: String,
    /// Its web process; `None` when `web` is scaled to zero or absent.
    pub web: Option<Arc<WebProcess>>,
}

/// Another node of the cluster that runs replicas of an app: where the
/// router forwards the app's requests when it has none of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The node's name.
    pub node: String,
    /// Its router's address.
    pub router: std::net::SocketAddr,
    /// How many replicas of the app's `web` it runs.
    pub replicas: usize,
}

#[derive(Default, Clone)]
struct Entries {
    apps: HashMap<String, Arc<AppRoute>>,
    domains: HashMap<String, String>,
    default_app: Option<String>,
    /// Per app, the other nodes running its `web` (a cluster's).
    peers: HashMap<String, Arc<[Peer]>>,
    /// Apps in maintenance mode: the router answers for them.
    maintenance: HashSet<String>,
}

/// Host → app lookup, cheap to read and atomically replaceable.
#[derive(Default)]
pub struct RouteTable {
    entries: ArcSwap<Entries>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an app's entry. A new web process shares the
    /// app's slice of the instance pool with the one it replaces, which may
    /// still be draining: one app, one share, whatever its releases.
    pub fn set_app(&self, route: AppRoute) {
        let previous = self.app(&route.name).and_then(|old| old.web.clone());
        if let (Some(new), Some(old)) = (&route.web, previous) {
            if !Arc::ptr_eq(new, &old) {
                new.share_with(&old);
            }
        }
        let route = Arc::new(route);
        self.entries.rcu(|old| {
            let mut new = Entries::clone(old);
            new.apps.insert(route.name.clone(), route.clone());
            new
        });
    }

    /// Removes an app (and its domains).
    pub(crate) fn remove_app(&self, name: &str) {
        self.entries.rcu(|old| {
            let mut new = Entries::clone(old);
            new.apps.remove(name);
            new.peers.remove(name);
            new.maintenance.remove(name);
            new.domains.retain(|_, app| app != name);
            if new.default_app.as_deref() == Some(name) {
                new.default_app = None;
            }
            new
        });
    }

    /// Routes `domain` (exact match, any port) to `app`.
    pub(crate) fn add_domain(&self, domain: &str, app: &str) {
        let domain = domain.to_ascii_lowercase();
        self.entries.rcu(|old| {
            let mut new = Entries::clone(old);
            new.domains.insert(domain.clone(), app.to_string());
            new
        });
    }

    /// Stops routing `domain`.
    pub(crate) fn remove_domain(&self, domain: &str) {
        let domain = domain.to_ascii_lowercase();
        self.entries.rcu(|old| {
            let mut new = Entries::clone(old);
            new.domains.remove(&domain);
            new
        });
    }

    /// Makes `domains` (lowercased) exactly the domains routed to `app`.
    pub(crate) fn set_domains(&self, app: &str, domains: &[String]) {
        self.entries.rcu(|old| {
            let mut new = Entries::clone(old);
            new.domains.retain(|_, owner| owner != app);
            for domain in domains {
                new.domains
                    .insert(domain.to_ascii_lowercase(), app.to_string());
            }
            new
        });
    }

    /// The apps routed, by name.
    pub(crate) fn app_names(&self) -> Vec<String> {
        self.entries.load().apps.keys().cloned().collect()
    }

    /// Sets the other nodes that serve `app` (empty: none).
    pub(crate) fn set_peers(&self, app: &str, peers: Vec<Peer>) {
        if self.peers(app).as_deref() == Some(&peers[..]) {
            return;
        }
        let peers: Arc<[Peer]> = peers.into();
        self.entries.rcu(|old| {
            let mut new = Entries::clone(old);
            if peers.is_empty() {
                new.peers.remove(app);
            } else {
                new.peers.insert(app.to_string(), peers.clone());
            }
            new
        });
    }

    /// The other nodes that serve `app`, if any.
    pub(crate) fn peers(&self, app: &str) -> Option<Arc<[Peer]>> {
        self.entries.load().peers.get(app).cloned()
    }

    /// Puts `app` in maintenance mode (`true`: the router answers its
    /// requests with a maintenance page) or takes it out.
    pub(crate) fn set_maintenance(&self, app: &str, on: bool) {
        if self.in_maintenance(app) == on {
            return;
        }
        self.entries.rcu(|old| {
            let mut new = Entries::clone(old);
            if on {
                new.maintenance.insert(app.to_string());
            } else {
                new.maintenance.remove(app);
            }
            new
        });
    }

    /// Whether `app` is in maintenance mode.
    pub(crate) fn in_maintenance(&self, app: &str) -> bool {
        self.entries.load().maintenance.contains(app)
    }

    /// Requests whose Host matches no app go to `app`.
    pub fn set_default(&self, app: Option<&str>) {
        self.entries.rcu(|old| {
            let mut new = Entries::clone(old);
            new.default_app = app.map(str::to_string);
            new
        });
    }

    /// The entry of the app called `name`.
    pub(crate) fn app(&self, name: &str) -> Option<Arc<AppRoute>> {
        self.entries.load().apps.get(name).cloned()
    }

    /// Finds the app for a Host header value (port ignored, case-insensitive):
    /// a custom domain, then `APP.localhost` (or `APP.anything.localhost`),
    /// then the default app.
    pub fn lookup(&self, host: Option<&str>) -> Option<Arc<AppRoute>> {
        let entries = self.entries.load();
        let found = host.and_then(|host| {
            let host = strip_port(host).to_ascii_lowercase();
            if let Some(app) = entries.domains.get(&host) {
                return entries.apps.get(app).cloned();
            }
            let label = host.strip_suffix(".localhost")?.rsplit('.').next()?;
            entries.apps.get(label).cloned()
        });
        found.or_else(|| {
            let default = entries.default_app.as_ref()?;
            entries.apps.get(default).cloned()
        })
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [::1]:8080
        return host.split(']').next().map_or(host, |h| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str) -> AppRoute {
        AppRoute {
            name: name.into(),
            web: None,
        }
    }

    #[test]
    fn hosts_map_to_apps() {
        let table = RouteTable::new();
        table.set_app(app("hello"));
        table.set_app(app("other"));
        table.add_domain("Example.COM", "other");
        let name = |host: Option<&str>| table.lookup(host).map(|a| a.name.clone());
        assert_eq!(name(Some("hello.localhost:8080")).as_deref(), Some("hello"));
        assert_eq!(name(Some("HELLO.localhost")).as_deref(), Some("hello"));
        assert_eq!(name(Some("example.com:80")).as_deref(), Some("other"));
        assert_eq!(name(Some("127.0.0.1:8080")), None);
        table.set_default(Some("hello"));
        assert_eq!(name(Some("127.0.0.1:8080")).as_deref(), Some("hello"));
        assert_eq!(name(None).as_deref(), Some("hello"));
        table.remove_domain("example.com");
        assert_eq!(
            name(Some("example.com")).as_deref(),
            Some("hello"),
            "default app"
        );
        table.remove_app("hello");
        assert_eq!(name(Some("hello.localhost")), None);
    }

    #[test]
    fn maintenance_is_per_app_and_goes_with_it() {
        let table = RouteTable::new();
        table.set_app(app("a"));
        table.set_app(app("b"));
        table.set_maintenance("a", true);
        assert!(table.in_maintenance("a") && !table.in_maintenance("b"));
        table.set_maintenance("a", false);
        assert!(!table.in_maintenance("a"));
        table.set_maintenance("b", true);
        table.remove_app("b");
        table.set_app(app("b"));
        assert!(!table.in_maintenance("b"), "a new app of the same name");
    }
}
