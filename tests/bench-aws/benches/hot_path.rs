//! The cached path, per call, in one run against one mock IMDS:
//!
//! - `credstate-blocking`: `Provider::credentials()`;
//! - `credstate-tokio`: `Provider::credentials()`, polled once (it completes
//!   without awaiting on the hot path);
//! - `aws-config`: `ImdsCredentialsProvider` behind the lazy identity cache
//!   aws-sdk-rust clients use by default, resolved as the SDK's orchestrator
//!   resolves it (`resolve_cached_identity`), polled once.
//!
//! Each is measured on one thread and on two threads calling at once. The
//! credentials live 6 h, so every measured call is served from cache.
//!
//! Run from this folder: `cargo bench --bench hot_path`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime_api::client::identity::{
    ResolveCachedIdentity, SharedIdentityCache, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use credstate_tests::mock_imds::{MockImds, MockImdsOptions};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};

/// Poll a future once; on the hot path every contender completes at once.
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the cached path awaited"),
    }
}

struct AwsConfigCached {
    cache: SharedIdentityCache,
    resolver: SharedIdentityResolver,
    components: RuntimeComponents,
    config_bag: ConfigBag,
}

impl AwsConfigCached {
    fn call(&self) -> aws_smithy_runtime_api::client::identity::Identity {
        poll_once(self.cache.resolve_cached_identity(
            self.resolver.clone(),
            &self.components,
            &self.config_bag,
        ))
        .expect("cached identity")
    }
}

struct Contenders {
    runtime: tokio::runtime::Runtime,
    blocking: credstate_blocking::Provider,
    tokio: credstate_tokio::Provider,
    aws: Arc<AwsConfigCached>,
    _mock: MockImds,
}

fn contenders() -> Contenders {
    let mock = MockImds::start(MockImdsOptions::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();

    let mut config = credstate::Config::default();
    config.endpoint = mock.endpoint();
    let blocking = credstate_blocking::Provider::new(config.clone()).unwrap();
    blocking.credentials().unwrap();
    let tokio = credstate_tokio::Provider::new(config).unwrap();
    runtime.block_on(tokio.credentials()).unwrap();

    let provider_config = ProviderConfig::default()
        .with_http_client(aws_smithy_http_client::Builder::new().build_http());
    let imds_client = aws_config::imds::Client::builder()
        .configure(&provider_config)
        .endpoint(mock.endpoint())
        .unwrap()
        .build();
    let imds = ImdsCredentialsProvider::builder()
        .configure(&provider_config)
        .imds_client(imds_client)
        .build();
    let aws = AwsConfigCached {
        cache: IdentityCache::lazy().build(),
        resolver: SharedIdentityResolver::new(SharedCredentialsProvider::new(imds)),
        components: RuntimeComponentsBuilder::for_tests()
            .with_time_source(Some(SharedTimeSource::default()))
            .with_sleep_impl(Some(TokioSleep::new()))
            .build()
            .unwrap(),
        config_bag: ConfigBag::base(),
    };
    // The first resolution loads; every later one is the cached path.
    runtime
        .block_on(aws.cache.resolve_cached_identity(
            aws.resolver.clone(),
            &aws.components,
            &aws.config_bag,
        ))
        .unwrap();
    let requests_after_warm_up = mock.stats().total;
    aws.call();
    assert_eq!(mock.stats().total, requests_after_warm_up);

    drop(_entered);
    Contenders {
        runtime,
        blocking,
        tokio,
        aws: Arc::new(aws),
        _mock: mock,
    }
}

/// Time `iters` calls on each of `threads` threads running at once; the
/// result is the wall time, so per-iteration figures are per call per thread.
fn concurrently(
    threads: usize,
    iters: u64,
    runtime: &tokio::runtime::Runtime,
    call: &(dyn Fn() + Sync),
) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    // aws-config's cache arms a tokio timer on every call.
                    let _entered = runtime.enter();
                    barrier.wait();
                    let started = Instant::now();
                    for _ in 0..iters {
                        call();
                    }
                    started.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .max()
            .unwrap()
    })
}

fn hot_path(c: &mut Criterion) {
    let contenders = contenders();
    let blocking = || {
        black_box(contenders.blocking.credentials().unwrap());
    };
    let tokio = || {
        black_box(poll_once(contenders.tokio.credentials()).unwrap());
    };
    let aws = || {
        black_box(contenders.aws.call());
    };
    let calls: [(&str, &(dyn Fn() + Sync)); 3] = [
        ("credstate-blocking", &blocking),
        ("credstate-tokio", &tokio),
        ("aws-config-lazy-cache", &aws),
    ];
    for threads in [1, 2] {
        let mut group = c.benchmark_group(format!("cached_credentials_{threads}_thread"));
        for (name, call) in calls {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| concurrently(threads, iters, &contenders.runtime, call));
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = hot_path
}
criterion_main!(benches);
