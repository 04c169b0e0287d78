/*
 * perfmonitor browser client as an ES module:
 *
 *   import { init, onVital, journeys } from "/static/perfmonitor/perfmonitor.mjs";
 *   init({ collectUrl: "/perfmonitor/api/v1/collect", sampleRate: 0.5 });
 *
 * The module loads the classic script (one implementation, one instance per page even
 * when the template tag is also used) and re-exports its API.
 */
import "./perfmonitor.js";

const client = globalThis.perfmonitor;

export const init = client.init;
export const trackRender = client.trackRender;
export const trackAsync = client.trackAsync;
export const track = client.track;
export const journeys = client.journeys;
export const onVital = client.onVital;
export const getVitals = client.getVitals;
export const getScore = client.getScore;
export const onScore = client.onScore;
export const flush = client.flush;
export default client;
