//! Small dictionaries over many connections against a running server, for
//! profiling it: `cargo run --release -p ferry-bench --example dict_load -- ADDR [CONNECTIONS] [SECONDS]`.

use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().map_or("127.0.0.1:6868", String::as_str);
    let connections = args.get(1).map_or(Ok(64), |a| a.parse())?;
    let seconds = args.get(2).map_or(Ok(10), |a| a.parse())?;
    let rate = ferry_bench::tcp::dict_rate(addr, connections, Duration::from_secs(seconds)).await?;
    println!("{rate:?}");
    Ok(())
}
