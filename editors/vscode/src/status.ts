// The wire shape of PROTOCOL.md's `arca/status` object. Pure data, no imports:
// shared by the state mapping, the protocol code and the tests.

export type CrateState = "fresh" | "stale" | "missing" | "building" | "unconfigured" | "error";

export interface ArtifactSummary {
  id: string;
  tag: string;
  fingerprint: string;
  createdAt: number;
}

export interface CrateStatus {
  /** `file://` URI of the crate directory, no trailing slash. */
  crate: string;
  name: string;
  state: CrateState;
  fingerprint: string | null;
  artifact: ArtifactSummary | null;
  reasons: string[];
  message: string;
  /** The container `arca.run` started, while it runs (PROTOCOL.md additions; absent from older servers). */
  running?: RunningContainer | null;
  /** The newest image's SBOM (additive; absent from older servers). */
  sbom?: SbomSummary | null;
  /** The platforms of the newest image's index (additive; absent for one platform). */
  platforms?: string[];
}

export interface SbomSummary {
  digest: string;
  packages: number;
}

export interface RunningContainer {
  container: string;
  image: string;
  startedAt: number;
}
