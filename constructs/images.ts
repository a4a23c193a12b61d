/**
 * Images the manifests reference. The defaults match the repository's multi-stage
 * Dockerfile: `docker build --target <component> -t ghcr.io/dragonfly-ts/<component>:<version> .`
 */
import { version as packageVersion } from '../package.json';

/** Repository and tag of one image. */
export interface ImageRef {
  /**
   * Image repository, e.g. "ghcr.io/dragonfly-ts/manager".
   * @default - ghcr.io/dragonfly-ts/<component>
   */
  readonly repository?: string;
  /**
   * Image tag.
   * @default - this package's version (package.json "version")
   */
  readonly tag?: string;
  /**
   * Pull policy.
   * @default "IfNotPresent"
   */
  readonly pullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
}

/** The three images built from the Dockerfile (the dfdaemon image also holds dfget and dfinit). */
export type DragonflyComponentImage = 'manager' | 'scheduler' | 'dfdaemon';

export const DEFAULT_IMAGE_REGISTRY = 'ghcr.io/dragonfly-ts';
export const DEFAULT_IMAGE_TAG: string = packageVersion;

/** "repository:tag" for a component, applying the defaults. */
export function imageOf(component: DragonflyComponentImage, ref: ImageRef | undefined): string {
  const repository = ref?.repository ?? `${DEFAULT_IMAGE_REGISTRY}/${component}`;
  const tag = ref?.tag ?? DEFAULT_IMAGE_TAG;
  if (!/^[a-z0-9]+([._\-/:][a-z0-9]+)*$/.test(repository)) {
    throw new Error(`image repository "${repository}" is not a valid image name; use lowercase like "ghcr.io/dragonfly-ts/${component}"`);
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) {
    throw new Error(`image tag "${tag}" is not a valid tag; use letters, digits, ".", "_" or "-" (e.g. "${DEFAULT_IMAGE_TAG}")`);
  }
  return `${repository}:${tag}`;
}

export function pullPolicyOf(ref: ImageRef | undefined): 'Always' | 'IfNotPresent' | 'Never' {
  return ref?.pullPolicy ?? 'IfNotPresent';
}
