//! The pipeline's configuration as a capture records it, and back: the recorder writes it in
//! every file's header, replay builds the same pipeline from it. Both directions live here, next
//! to each other, so they cannot drift apart; neither the capture format nor the pipeline knows
//! the other.
use crate::{capture::format::ConfigRecord, pipeline::PipelineConfig, policy::NetEnvironment};

/// What a capture header records of `config`.
pub fn config_record(config: &PipelineConfig) -> ConfigRecord {
    ConfigRecord {
        node: config.node.to_string(),
        clock: config.clock,
        hold_ns: config.hold_ns,
        host_mnt_ns: config.host_mnt_ns,
        cluster_cidrs: config
            .net_env
            .cluster_cidrs
            .iter()
            .map(ToString::to_string)
            .collect(),
        kubernetes_api: config
            .net_env
            .kubernetes_api
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

/// The pipeline configuration a capture header recorded.
pub fn pipeline_config(record: &ConfigRecord) -> PipelineConfig {
    PipelineConfig {
        node: record.node.as_str().into(),
        clock: record.clock,
        hold_ns: record.hold_ns,
        host_mnt_ns: record.host_mnt_ns,
        // Written by `config_record` from parsed values, so every entry parses back.
        net_env: NetEnvironment {
            cluster_cidrs: record
                .cluster_cidrs
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            kubernetes_api: record
                .kubernetes_api
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
        },
    }
}
