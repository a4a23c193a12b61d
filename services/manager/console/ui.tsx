/** Small shared pieces: labelled fields with their API error, banners, the confirm dialog, data loading. */
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type FieldProblem } from './api';

let nextId = 0;
export function useId(prefix: string): string {
  const ref = useRef<string>();
  if (!ref.current) ref.current = `${prefix}-${++nextId}`;
  return ref.current;
}

export interface FieldProps {
  label: string;
  /** Shown under the input, and linked to it for screen readers. */
  hint?: string;
  error?: string;
  children: (props: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string }) => JSX.Element;
}

/** A <label> + input + hint + the API's message for this field. */
export function Field({ label, hint, error, children }: FieldProps) {
  const id = useId('field');
  const described = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class={`field${error ? ' field-invalid' : ''}`}>
      <label for={id}>{label}</label>
      {children({ id, 'aria-invalid': Boolean(error), ...(described ? { 'aria-describedby': described } : {}) })}
      {hint && (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      )}
      {error && (
        <span id={`${id}-error`} class="field-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

export function ErrorBanner({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : 'unexpected error';
  return (
    <p class="banner banner-error" role="alert">
      {message}
    </p>
  );
}

/** Splits the API's field problems by form field (longest matching path prefix); the rest is form-level. */
export function problemsByField(error: unknown, fields: readonly string[]): { byField: Record<string, string>; rest: string | undefined } {
  if (!(error instanceof ApiError)) return { byField: {}, rest: error instanceof Error ? error.message : error ? 'unexpected error' : undefined };
  const byField: Record<string, string> = {};
  const unmatched: FieldProblem[] = [];
  const sorted = [...fields].sort((a, b) => b.length - a.length);
  for (const p of error.problems) {
    const field = sorted.find((f) => p.path === f || p.path.startsWith(`${f}.`));
    if (!field) {
      unmatched.push(p);
      continue;
    }
    const suffix = p.path === field ? '' : ` (item ${p.path.slice(field.length + 1)})`;
    byField[field] = byField[field] ? `${byField[field]}; ${p.message}${suffix}` : `${p.message}${suffix}`;
  }
  const rest = error.problems.length === 0 ? error.message : unmatched.length > 0 ? unmatched.map((p) => `${p.path}: ${p.message}`).join('; ') : undefined;
  return { byField, rest };
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now and on `reload()`; the latest answer wins. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** A modal confirmation on the native <dialog> (focus trapped, Escape cancels). */
export function ConfirmDialog(props: { open: boolean; title: string; children: ComponentChildren; confirmLabel: string; onConfirm: () => void; onCancel: () => void; busy?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="confirm-title" onCancel={(e) => (e.preventDefault(), props.onCancel())}>
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.children}</div>
      <div class="actions">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={props.onConfirm} disabled={props.busy}>
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function StateBadge({ state }: { state: string }) {
  const kind = /^(active|enable|success)$/i.test(state) ? 'ok' : /^(inactive|disable|failure)$/i.test(state) ? 'bad' : 'neutral';
  return <span class={`badge badge-${kind}`}>{state}</span>;
}

/** Copies text; falls back to a hidden selection where the Clipboard API is unavailable (plain-HTTP origins). */
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('the browser refused to copy; select the text and copy it by hand');
}
