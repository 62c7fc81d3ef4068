// The selected feature's top-activating contexts, asked of the session when the selection
// changes (the answer of a selection the user has already left is dropped).

import { useEffect, useState } from 'react';
import { METRIC_NODE, type Circuit, type CircuitNode } from '@sfc/core';
import { isErrorNode } from './circuit-view.js';
import type { TopContextsView, TuiSession } from './session.js';

export function useTopContexts(session: TuiSession, circuit: Circuit | undefined, node: CircuitNode | undefined): TopContextsView | undefined {
  const [view, setView] = useState<TopContextsView | undefined>(undefined);
  const feature = circuit && node && node.submodule !== METRIC_NODE && !isErrorNode(circuit, node) ? node : undefined;
  const key = feature ? `${feature.submodule}/${feature.index}` : undefined;
  useEffect(() => {
    setView(undefined);
    if (!feature || !session.topContexts) return;
    let current = true;
    session.topContexts(feature.submodule, feature.index!).then(
      (v) => { if (current) setView(v); },
      (e: unknown) => { if (current) setView({ none: `top contexts: ${(e as Error).message}` }); },
    );
    return () => { current = false; };
  }, [session, key]); // eslint-disable-line react-hooks/exhaustive-deps
  return view;
}
