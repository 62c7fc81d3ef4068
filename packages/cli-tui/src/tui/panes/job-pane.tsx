// The running-job view (discovery launched with D): one progress bar per stage core reports
// (batches, submodules, edges …) with counts and ETA, the elapsed time, and at the end what was
// discovered and where it was written, or why it failed.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Box, Text } from 'ink';
import type { ProgressEvent } from '@sfc/core';
import { duration, pct, timing } from '../../progress.js';
import { Line, Title } from './line.js';

export interface StageProgress {
  readonly event: ProgressEvent;
  /** When the stage (re)started, ms. */
  readonly start: number;
}

export type Job =
  | {
    readonly status: 'running'; readonly start: number; readonly stages: readonly StageProgress[]; readonly note?: string;
    /** Cancel was asked for; the work stops at its next unit. */
    readonly cancelling?: boolean;
  }
  | { readonly status: 'done'; readonly start: number; readonly end: number; readonly stages: readonly StageProgress[]; readonly summary: string }
  | { readonly status: 'failed'; readonly start: number; readonly end: number; readonly stages: readonly StageProgress[]; readonly error: string }
  | { readonly status: 'cancelled'; readonly start: number; readonly end: number; readonly stages: readonly StageProgress[] };

export interface JobPaneProps {
  readonly width: number;
  readonly height: number;
  readonly job: Job;
  /** Current time, ms (the App ticks it while the job runs). */
  readonly now: number;
}

/** The job's stages after one more progress event: a stage restarts its clock when its count goes down. */
export function addProgress(stages: readonly StageProgress[], event: ProgressEvent, now: number): StageProgress[] {
  const at = stages.findIndex((s) => s.event.stage === event.stage);
  if (at < 0) return [...stages, { event, start: now }];
  const prev = stages[at]!;
  const next = { event, start: event.done < prev.event.done ? now : prev.start };
  return stages.map((s, i) => (i === at ? next : s));
}

/** `[███░░] 3/10 30% ETA 0:12` in `width` columns: the bar shrinks first, so the counts and the ETA are never cut. */
export function fittedBar(e: ProgressEvent, elapsedMs: number, width: number): string {
  const frac = e.total > 0 ? Math.min(1, Math.max(0, e.done / e.total)) : 0;
  const tail = ` ${e.done}/${e.total} ${pct(frac)} ${timing(e, elapsedMs)}`;
  const barWidth = Math.max(0, Math.min(30, width - tail.length - 2));
  if (barWidth < 3) return tail.trimStart();
  const filled = Math.round(frac * barWidth);
  return `[${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}]${tail}`;
}

export function JobPane({ width, height, job, now }: JobPaneProps) {
  const end = job.status === 'running' ? now : job.end;
  const elapsed = duration(end - job.start);
  const info = {
    running: <Text color="yellow">{`${job.status === 'running' && job.cancelling ? 'cancelling…' : 'running'} ${elapsed}`}</Text>,
    done: <Text color="green">{`done in ${elapsed}`}</Text>,
    failed: <Text color="redBright">{`failed after ${elapsed}`}</Text>,
    cancelled: <Text color="yellow">{`cancelled after ${elapsed}`}</Text>,
  }[job.status];
  // Two rows per stage: its name (and the item just finished), then the bar.
  const stageCount = Math.max(0, Math.floor((height - 2) / 2));
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Title width={width} title="Discovery" info={info} hint={job.status !== 'running' ? 'Esc close' : job.cancelling ? '' : 'Esc cancel'} />
      {job.stages.length === 0 && job.status === 'running'
        ? <Line width={width}><Text dimColor>{job.note ?? 'starting…'}</Text></Line>
        : job.stages.slice(-stageCount).map((s) => (
            <Box key={s.event.stage} flexDirection="column" width={width} height={2} overflow="hidden">
              <Line width={width}><Text>{s.event.stage}</Text><Text dimColor>{s.event.detail ? ` ${s.event.detail}` : ''}</Text></Line>
              <Line width={width}><Text>{fittedBar(s.event, end - s.start, width)}</Text></Line>
            </Box>
          ))}
      {job.status === 'done' ? <Box width={width} overflow="hidden"><Text wrap="wrap" color="green">{job.summary}</Text></Box> : null}
      {job.status === 'failed' ? <Box width={width} overflow="hidden"><Text wrap="wrap" color="redBright">{job.error}</Text></Box> : null}
      {job.status === 'running' && job.stages.length > 0 && job.note ? <Line width={width}><Text dimColor>{job.note}</Text></Line> : null}
    </Box>
  );
}
