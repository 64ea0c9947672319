// Data loading for screens: one fetch per change of its inputs, the previous one cancelled.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, Query } from './api';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
}

/** GET `path` with `query` (skipped while `path` is null); reloads when either changes. */
export function useApi<T>(path: string | null, query?: Query): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const key = path === null ? null : path + JSON.stringify(query ?? {});
  useEffect(() => {
    if (path === null) {
      setData(undefined);
      setError(undefined);
      return;
    }
    const controller = new AbortController();
    setLoading(true);
    setError(undefined);
    api<T>(path, { query, signal: controller.signal })
      .then((value) => {
        setData(value);
        setLoading(false);
      })
      .catch((e: Error) => {
        if (e.name === 'AbortError') return;
        setError(e instanceof ApiError ? e : new ApiError(0, e.message));
        setData(undefined);
        setLoading(false);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Runs `fn` every `ms` while `active`, never two at once. */
export function useInterval(fn: () => Promise<void> | void, ms: number, active = true) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return;
    let stopped = false;
    let timer: number | undefined;
    const run = async () => {
      try {
        await saved.current();
      } finally {
        if (!stopped) timer = window.setTimeout(run, ms);
      }
    };
    run();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [ms, active]);
}

export type Outcome<T> = { ok: true; value: T } | { ok: false };

/** A mutation's state: busy flag and the last error, with `run` wrapping the call. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const run = useCallback(async <T,>(fn: () => Promise<T>): Promise<Outcome<T>> => {
    setBusy(true);
    setError(undefined);
    try {
      return { ok: true, value: await fn() };
    } catch (e) {
      setError((e as Error).message);
      return { ok: false };
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}
