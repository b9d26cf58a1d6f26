import { CredentialsMachine } from './credstate_wasm.js';

export {
  CredentialsMachine,
  MachineConfig,
  MachineCredentials,
  MachineDemand,
  MachineEvent,
  MachineFailure,
  MachineOutput,
  MachineRequest,
  MachineResponse,
  MachineSnapshot,
} from './credstate_wasm.js';

/** Temporary AWS credentials, shaped as the AWS SDK for JavaScript v3 expects. */
export interface AwsCredentialIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  /** When the credentials expire, as reported by IMDS. */
  readonly expiration: Date;
  readonly accountId?: string;
}

/** Where log lines go; warnings report trouble, debug lines every decision. */
export interface Logger {
  warn?(message: string): void;
  debug?(message: string): void;
}

export interface InstanceMetadataOptions {
  /** IMDS endpoint, e.g. `http://169.254.169.254` (scheme, host, optional port). */
  endpoint?: string;
  /** `IPv4` (default) or `IPv6`; ignored when `endpoint` is set. */
  endpointMode?: 'IPv4' | 'IPv6';
  /** Deadline of one request attempt in milliseconds, connect through last body byte. Default 1000. */
  timeout?: number;
  /** Attempts in all for retryable failures within one fetch. Default 3. */
  maxAttempts?: number;
  /** Never fall back to IMDSv1. Default false. */
  ec2MetadataV1Disabled?: boolean;
  /** The IAM role name; discovered on every refresh when omitted. */
  profile?: string;
  /** Reject instead of serving expired credentials during an IMDS outage. Default false. */
  strict?: boolean;
  /** Receives one line per event; silent when omitted. */
  logger?: Logger;
  /** The fetch to use. Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  /** Wall clock in epoch milliseconds. Default `Date.now`. */
  now?: () => number;
  /** Seed of the refresh jitter, for reproducible tests. Default random. */
  seed?: number;
}

/**
 * A credential provider for the AWS SDK for JavaScript v3 that keeps EC2
 * instance-role credentials fresh: `new S3Client({ credentials: fromInstanceMetadata() })`.
 *
 * Concurrent calls share one fetch; cached credentials resolve without IO;
 * refresh runs ahead of expiry in the background. Errors reject with an
 * `Error` whose `name` is the cause (e.g. `LikelyHopLimit`, `NoRoleAttached`).
 * Throws an `Error` named `ConfigError` for invalid options.
 */
export function fromInstanceMetadata(
  options?: InstanceMetadataOptions,
): (identityProperties?: Record<string, unknown>) => Promise<AwsCredentialIdentity>;

/** Browser entry only: instantiate the wasm module ahead of first use. */
export function initialize(moduleOrPath?: unknown): Promise<unknown>;
