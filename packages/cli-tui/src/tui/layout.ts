// Pane sizes for a terminal of a given size, as a pure function: one header and one footer row,
// a left column (circuit list over the effects chart) and a right column (node, steering,
// prompt, result). At 80×24 every pane fits; larger terminals give the extra rows to the circuit
// list and the result, extra columns to both sides.

export const MIN_COLUMNS = 60;
export const MIN_ROWS = 18;

export interface Layout {
  readonly columns: number;
  readonly rows: number;
  /** Too small to draw the panes: show a message instead. */
  readonly tooSmall: boolean;
  readonly leftWidth: number;
  readonly rightWidth: number;
  /** Rows of each pane, title row included. */
  readonly circuitRows: number;
  readonly chartRows: number;
  readonly nodeRows: number;
  readonly steerRows: number;
  readonly promptRows: number;
  readonly resultRows: number;
}

/**
 * @param submodules how many submodules the chart has bars for (it gets at most a third of
 *   the body, and never fewer than 2 bars).
 */
export function computeLayout(columns: number, rows: number, submodules: number): Layout {
  const tooSmall = columns < MIN_COLUMNS || rows < MIN_ROWS;
  const body = Math.max(0, rows - 2);
  const leftWidth = Math.floor(columns * 0.45);
  const rightWidth = columns - leftWidth;
  const chartRows = 1 + Math.max(2, Math.min(submodules, Math.floor(body / 3) - 1));
  const circuitRows = Math.max(0, body - chartRows);
  const steerRows = 3;
  const promptRows = 2;
  // The node pane grows with the terminal (more edges); the result keeps the rest.
  const nodeRows = body >= 30 ? 11 : body >= 26 ? 9 : 7;
  const resultRows = Math.max(0, body - nodeRows - steerRows - promptRows);
  return { columns, rows, tooSmall, leftWidth, rightWidth, circuitRows, chartRows, nodeRows, steerRows, promptRows, resultRows };
}
