/** bosun's release, reported in `/health` and the status message. */
export const VERSION = "0.1.0";
