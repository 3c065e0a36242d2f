//! End-to-end tests: the real `wpaas` binary, real guests, real HTTP.
//! One test binary (modules below) to keep link time down.

mod bodies;
mod bounds;
mod browser;
mod build_sandbox;
mod c_lang;
mod cli_errors;
mod cluster;
mod components;
mod control;
mod dashboard;
mod edges;
mod foreign;
mod git;
mod healthcheck;
mod javascript;
mod keyvalue;
mod languages_rust;
mod lifecycle;
mod logs;
mod maintenance;
mod metrics;
mod new_app;
mod processes;
mod ps_replicas;
mod python;
mod router_pages;
mod sandbox;
mod shares;
mod source;
mod tls;
mod wagi;
mod zero_downtime;
