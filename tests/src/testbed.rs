//! One isolated world per test: its own moto, its own Image Builder loopback, seeded.

use aws_config::SdkConfig;
use shared::aws::Clients;
use shared::config::{Env, PromoteConfig};
use shared::promote::Promoter;

use crate::emulator::Moto;
use crate::imagebuilder_loopback::ImageBuilderLoopback;
use crate::seed::{self, Received, Seeded};

pub struct TestBed {
    pub moto: Moto,
    pub imagebuilder: ImageBuilderLoopback,
    pub config: SdkConfig,
    pub clients: Clients,
    pub seeded: Seeded,
}

impl TestBed {
    pub async fn start() -> TestBed {
        let moto = Moto::start();
        let imagebuilder = ImageBuilderLoopback::start(crate::events_dir().join("imagebuilder"));
        let config = moto.sdk_config().await;
        let clients = seed::clients(&config, &imagebuilder.url);
        let seeded = seed::seed(&config).await;
        TestBed {
            moto,
            imagebuilder,
            config,
            clients,
            seeded,
        }
    }

    /// The function's configuration as the template sets it, plus `extra` overrides.
    pub fn promote_config(&self, extra: &[(&str, &str)]) -> PromoteConfig {
        let mut vars = seed::function_env(
            &self.moto.url,
            &self.imagebuilder.url,
            &self.seeded.topic_arn,
        );
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_string(), v.to_string()));
        }
        PromoteConfig::from_env(&Env::from_pairs(
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
        .expect("test configuration is valid")
    }

    pub fn promoter(&self, extra: &[(&str, &str)]) -> Promoter {
        Promoter::new(self.promote_config(extra), self.clients.clone())
    }

    pub async fn pointer(&self) -> Option<String> {
        shared::aws::ssm::read_pointer(&self.clients.ssm, crate::POINTER)
            .await
            .unwrap()
    }

    pub async fn pointer_history(&self) -> Vec<shared::aws::ssm::PointerVersion> {
        shared::aws::ssm::history(&self.clients.ssm, crate::POINTER)
            .await
            .unwrap()
    }

    pub async fn notifications(&self) -> Vec<Received> {
        seed::notifications(&self.config, &self.seeded.queue_url).await
    }

    pub async fn ami_tags(&self, ami: &str) -> Vec<(String, String)> {
        seed::ami_tags(&self.config, ami).await
    }

    pub async fn ami_tag(&self, ami: &str, key: &str) -> Option<String> {
        self.ami_tags(ami)
            .await
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}
