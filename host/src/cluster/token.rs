//! One API token for the whole cluster: the CLI logged in to any node
//! works with every node, and nodes authenticate to each other with it.
//!
//! ```text
//! <prefix>token   the token (as WPAAS_HOME/token holds it)
//! ```
//!
//! The first node to join puts its own token there (create-if-absent); a
//! node that joins later adopts the cluster's and writes it to its
//! `WPAAS_HOME/token`. etcd then holds a secret: give etcd the trust the
//! token has (loopback or TLS with client certificates, as for any etcd
//! that holds a cluster's state).

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

use crate::etcd::{Etcd, EtcdError};

/// The cluster's token: `mine` if the cluster had none, else the one it
/// has.
pub fn share_token(etcd: &Etcd, mine: &str) -> Result<String, EtcdError> {
    let key = etcd.key("token");
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.clone(), mine, None)])
        .or_else([TxnOp::get(key, None)]);
    let response = etcd.txn(txn)?;
    if response.succeeded() {
        return Ok(mine.to_string());
    }
    let theirs = response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.value().to_vec()),
        _ => None,
    });
    match theirs.map(String::from_utf8) {
        Some(Ok(token)) if !token.is_empty() => Ok(token),
        _ => Err(EtcdError::Request(
            "the cluster's token in etcd is unreadable; delete <prefix>token to let the next node set it".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::testing::{shared, unique_prefix};

    #[test]
    fn the_first_token_is_the_clusters() {
        let prefix = unique_prefix("token");
        let connect = || {
            Etcd::connect(
                &shared().endpoints(),
                &prefix,
                std::time::Duration::from_secs(2),
            )
            .unwrap()
        };
        assert_eq!(share_token(&connect(), "aaa").unwrap(), "aaa");
        assert_eq!(share_token(&connect(), "bbb").unwrap(), "aaa");
    }
}
