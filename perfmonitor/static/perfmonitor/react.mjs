/*
 * React hooks for perfmonitor. React is a peer dependency: never bundled here.
 *
 * Where "react" resolves (an import map, or your bundler), this module picks it up:
 *   <script type="importmap">{"imports": {"react": "/static/vendor/react.mjs"}}</script>
 *   import { useRenderTracking } from "/static/perfmonitor/react.mjs";
 * Otherwise hand React over once, before the first render:
 *   import { bindReact } from "/static/perfmonitor/react.mjs";
 *   bindReact(React);
 * or build a set of hooks yourself: `const hooks = createHooks(React)`.
 *
 * The hooks use the page's perfmonitor client (perfmonitor.mjs); they never throw into
 * a render because of monitoring.
 */
import client from "./perfmonitor.mjs";

const now = () => (globalThis.performance ? performance.now() : Date.now());
const nextPaint = (cb) => requestAnimationFrame(() => setTimeout(cb, 0));

let hooks = null;
try {
  const module = await import("react");
  const React = module.default && module.default.useState ? module.default : module;
  if (React.useState) hooks = createHooks(React);
} catch (error) {
  // No "react" in the import map: bindReact(React) must be called.
}

/** The five hooks, bound to one React and one perfmonitor client. */
export function createHooks(React, pm = client) {
  const { useCallback, useEffect, useLayoutEffect, useRef, useState } = React;
  const afterCommit = useLayoutEffect || useEffect;

  /** Times each render of the calling component, from render start to DOM commit. */
  function useRenderTracking(componentName, options = {}) {
    const started = now();
    const phase = useRef("mount");
    afterCommit(() => {
      const duration = now() - started;
      if (phase.current === "mount" || !(options.minDuration > duration)) {
        pm.trackRender(componentName, duration, { phase: phase.current });
      }
      phase.current = "update";
    });
  }

  /**
   * Returns `track(handler, metadata?)`: wraps an event handler and records the time from
   * the event until the next paint after it (and after its promise, if it returns one),
   * as the custom series "interaction.<name>".
   */
  function useInteractionTracking(interactionName) {
    return useCallback((handler, metadata) => function (...args) {
      const started = now();
      const record = (failed) => nextPaint(() => pm.track(`interaction.${interactionName}`,
        now() - started, { unit: "ms", error: failed, metadata }));
      let result;
      try {
        result = handler.apply(this, args);
      } catch (error) {
        record(true);
        throw error;
      }
      if (result && typeof result.then === "function") {
        result.then(() => record(false), () => record(true));
      } else {
        record(false);
      }
      return result;
    }, [interactionName]);
  }

  /**
   * Drives one journey of `journeyType`: start() returns its id; step/complete/fail/abandon
   * act on it. A journey still open when the component unmounts is abandoned ("unmounted")
   * unless options.abandonOnUnmount is false.
   */
  function useUserJourney(journeyType, options = {}) {
    const id = useRef(null);
    const [journeyId, setJourneyId] = useState(null);
    const finish = (action, ...args) => {
      if (!id.current) return;
      pm.journeys[action](id.current, ...args);
      id.current = null;
      setJourneyId(null);
    };
    useEffect(() => () => {
      if (id.current && options.abandonOnUnmount !== false) {
        pm.journeys.abandon(id.current, "unmounted");
        id.current = null;
      }
    }, []);
    return {
      journeyId,
      start: useCallback((metadata) => {
        id.current = pm.journeys.start(journeyType, metadata);
        setJourneyId(id.current);
        return id.current;
      }, [journeyType]),
      step: useCallback((step, metadata) => {
        if (id.current) pm.journeys.step(id.current, step, metadata);
      }, []),
      complete: useCallback((metadata) => finish("complete", metadata), []),
      // fail(step, reason, metadata) or fail(reason, metadata), as journeys.fail takes them.
      fail: useCallback((...args) => finish("fail", ...args), []),
      abandon: useCallback((reason, metadata) => finish("abandon", reason, metadata), []),
    };
  }

  /** The page's vitals as they change: { LCP: {value, rating, final, ...}, ... }. */
  function useWebVitals() {
    const [vitals, setVitals] = useState(() => pm.getVitals());
    useEffect(() => pm.onVital((vital) => {
      setVitals((current) => ({ ...current, [vital.name]: vital }));
    }), []);
    return vitals;
  }

  /** This page's front-end score: { score: 0-100, vitals: {...}, method } or null. */
  function usePerformanceScore() {
    const [score, setScore] = useState(() => pm.getScore());
    useEffect(() => pm.onScore(setScore), []);
    return score;
  }

  return { useRenderTracking, useInteractionTracking, useUserJourney, useWebVitals,
           usePerformanceScore };
}

/** Use this React for the exported hooks (when "react" is not in an import map). */
export function bindReact(React, pm = client) {
  hooks = createHooks(React, pm);
  return hooks;
}

function bound() {
  if (!hooks) {
    throw new Error('perfmonitor/react.mjs: React not found; map "react" in an import map ' +
                    "or call bindReact(React) before rendering.");
  }
  return hooks;
}

export const useRenderTracking = (...args) => bound().useRenderTracking(...args);
export const useInteractionTracking = (...args) => bound().useInteractionTracking(...args);
export const useUserJourney = (...args) => bound().useUserJourney(...args);
export const useWebVitals = (...args) => bound().useWebVitals(...args);
export const usePerformanceScore = (...args) => bound().usePerformanceScore(...args);
