//! `meta-sandbox --listen 127.0.0.1:8788`: the sandbox in the foreground.
//! Stops on Ctrl-C. Logs JSON by default (`--log-format pretty` for humans);
//! level from `RUST_LOG` (default `info`).

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};
use meta_sandbox::{spawn, Knobs, SandboxConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Parser)]
#[command(
    name = "meta-sandbox",
    about = "Local stand-in for Meta's WhatsApp Cloud API"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "META_SANDBOX_LISTEN", default_value = "127.0.0.1:8788")]
    listen: SocketAddr,
    /// Graph version reported as current (Meta's latest stable by default).
    #[arg(long, default_value = meta_sandbox::versions::CURRENT_VERSION)]
    graph_version: String,
    /// Delay before a submitted template is approved or rejected.
    #[arg(long, default_value_t = 3000)]
    template_approval_delay_ms: u64,
    /// Base URL for `paging.next` links (default: from the Host header).
    #[arg(long)]
    public_base_url: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
        LogFormat::Pretty => tracing_subscriber::fmt()
            .pretty()
            .with_env_filter(filter)
            .init(),
    }
    let config = SandboxConfig {
        graph_version: args.graph_version,
        knobs: Knobs {
            template_approval_delay_ms: args.template_approval_delay_ms,
            ..Knobs::default()
        },
        public_base_url: args.public_base_url,
        ..SandboxConfig::default()
    };
    let handle = spawn(args.listen, config).await?;
    tracing::info!(base_url = %handle.base_url(), "meta sandbox ready");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("shutting down");
            handle.shutdown().await;
        }
        _ = wait_forever() => {}
    }
    Ok(())
}

async fn wait_forever() {
    std::future::pending::<()>().await
}
