import { NotFoundError } from '../errors.ts';
import { ProtocolDefectError } from './errors.ts';
import {
  CONTINUE_TO_PATHWAY,
  type LifeThreateningModule,
  type PackManifest,
  type Pathway,
  type ProtocolDocument,
  type ProtocolNode,
} from './schema.ts';

/** A pack put together from its documents: pathways in the manifest's order. */
export interface ProtocolPack {
  manifest: PackManifest;
  lifeThreatening: LifeThreateningModule;
  pathways: Pathway[];
}

export interface PackSourceDocument {
  /** Where the document came from, e.g. its file name. */
  source: string;
  document: ProtocolDocument;
}

export interface PackProblem {
  /** The document's source; empty for the pack as a whole. */
  source: string;
  /** Field path inside that document; empty for the document as a whole. */
  path: string;
  message: string;
}

export type AssembleResult = { ok: true; pack: ProtocolPack } | { ok: false; problems: PackProblem[] };

/**
 * Puts a pack together from schema-checked documents: exactly one manifest, the life-threatening
 * module it names, and exactly the pathways it lists. Every problem is reported, not only the first.
 */
export function assemblePack(documents: readonly PackSourceDocument[]): AssembleResult {
  const problems: PackProblem[] = [];
  const manifests = documents.filter(
    (d): d is PackSourceDocument & { document: PackManifest } => d.document.kind === 'pack',
  );
  const [first, ...extra] = manifests;
  for (const d of extra)
    problems.push({
      source: d.source,
      path: 'kind',
      message: `a second pack manifest; the pack's manifest is ${first?.source}`,
    });
  if (!first)
    return { ok: false, problems: [{ source: '', path: '', message: 'no pack manifest (kind "pack")' }] };
  const manifest = first.document;

  let lifeThreatening: LifeThreateningModule | undefined;
  const pathways = new Map<string, Pathway>();
  const sourceOfPathway = new Map<string, string>();
  const listed = new Set(manifest.pathways.map((p) => p.id));

  for (const { source, document } of documents) {
    if (manifest.sample && !document.sample)
      problems.push({ source, path: 'sample', message: 'a sample pack holds only sample content' });
    switch (document.kind) {
      case 'pack':
        break;
      case 'life_threatening':
        if (document.id !== manifest.lifeThreatening)
          problems.push({
            source,
            path: 'id',
            message: `life-threatening module ${document.id} is not the one the manifest names (${manifest.lifeThreatening})`,
          });
        else if (lifeThreatening)
          problems.push({ source, path: 'id', message: `a second life-threatening module ${document.id}` });
        else lifeThreatening = document;
        break;
      case 'pathway':
        if (!listed.has(document.id))
          problems.push({
            source,
            path: 'id',
            message: `pathway ${document.id} is not listed in the manifest`,
          });
        else if (pathways.has(document.id))
          problems.push({
            source,
            path: 'id',
            message: `pathway ${document.id} is also in ${sourceOfPathway.get(document.id)}`,
          });
        else {
          pathways.set(document.id, document);
          sourceOfPathway.set(document.id, source);
        }
        break;
    }
  }
  if (!lifeThreatening)
    problems.push({
      source: first.source,
      path: 'lifeThreatening',
      message: `no life-threatening module ${manifest.lifeThreatening} in the pack`,
    });
  manifest.pathways.forEach((entry, i) => {
    if (!pathways.has(entry.id))
      problems.push({
        source: first.source,
        path: `pathways.${i}.id`,
        message: `no pathway ${entry.id} in the pack`,
      });
    if (entry.id === manifest.lifeThreatening)
      problems.push({
        source: first.source,
        path: `pathways.${i}.id`,
        message: 'a pathway cannot share the life-threatening module id',
      });
  });
  if (problems.length > 0 || !lifeThreatening) return { ok: false, problems };
  return {
    ok: true,
    pack: { manifest, lifeThreatening, pathways: manifest.pathways.map((p) => pathways.get(p.id)!) },
  };
}

/** What content a triage ran on, carried by every result so the screen can always say so. */
export interface TriageContentInfo {
  packId: string;
  packVersion: string;
  lifeThreateningId: string;
  lifeThreateningVersion: string;
  pathwayId: string;
  pathwayVersion: string;
  pathwayTitle: string;
  presentingComplaint: string;
  /** The symptom group the Directory of Services matches on; null when the pathway names none. */
  symptomGroup: string | null;
  /** Who the pathway is for in whole years (`min` inclusive, `below` exclusive); null: any age. */
  ageYears: { min?: number | undefined; below?: number | undefined } | null;
  /** True when any part is sample content: it must be shown as not clinically validated. */
  sample: boolean;
  /** The notice to show with the content: the sample label, or the pack's attribution. */
  label: string;
}

export type TriageSection = 'life_threatening' | 'pathway';

/**
 * One pathway with the life-threatening module in front of it: a single graph the engine walks.
 * Plain data (JSON-serialisable), so a browser can compose and walk exactly as the server does.
 */
export interface TriageProtocol {
  readonly content: TriageContentInfo;
  readonly startNode: string;
  readonly nodes: Readonly<Record<string, ProtocolNode>>;
  /** Which part each node came from. */
  readonly sections: Readonly<Record<string, TriageSection>>;
}

function withNext(node: ProtocolNode, map: (next: string) => string): ProtocolNode {
  switch (node.type) {
    case 'single_choice':
      return { ...node, options: node.options.map((o) => ({ ...o, next: map(o.next) })) };
    case 'multi_choice':
      return {
        ...node,
        rules: node.rules.map((r) => ({ ...r, next: map(r.next) })),
        defaultNext: map(node.defaultNext),
      };
    case 'numeric':
      return { ...node, ranges: node.ranges.map((r) => ({ ...r, next: map(r.next) })) };
    case 'disposition':
      return node;
  }
}

/** Puts the life-threatening module in front of a pathway: its way on leads to the pathway's start. */
export function composeProtocol(
  manifest: PackManifest,
  lifeThreatening: LifeThreateningModule,
  pathway: Pathway,
): TriageProtocol {
  const nodes: Record<string, ProtocolNode> = {};
  const sections: Record<string, TriageSection> = {};
  for (const [id, node] of Object.entries(lifeThreatening.nodes)) {
    nodes[id] = withNext(node, (next) => (next === CONTINUE_TO_PATHWAY ? pathway.startNode : next));
    sections[id] = 'life_threatening';
  }
  for (const [id, node] of Object.entries(pathway.nodes)) {
    if (Object.hasOwn(nodes, id))
      throw new ProtocolDefectError(pathway.id, id, 'node id is also used by the life-threatening module');
    nodes[id] = node;
    sections[id] = 'pathway';
  }
  const sample = manifest.sample || lifeThreatening.sample || pathway.sample;
  const label = pathway.sample
    ? pathway.label
    : lifeThreatening.sample
      ? lifeThreatening.label
      : manifest.label;
  return {
    content: {
      packId: manifest.id,
      packVersion: manifest.version,
      lifeThreateningId: lifeThreatening.id,
      lifeThreateningVersion: lifeThreatening.version,
      pathwayId: pathway.id,
      pathwayVersion: pathway.version,
      pathwayTitle: pathway.title,
      presentingComplaint: pathway.presentingComplaint,
      symptomGroup: pathway.symptomGroup ?? null,
      ageYears: pathway.ageYears ?? null,
      sample,
      label,
    },
    startNode: lifeThreatening.startNode,
    nodes,
    sections,
  };
}

/** The composed protocol for one pathway of a pack. */
export function protocolFor(pack: ProtocolPack, pathwayId: string): TriageProtocol {
  const pathway = pack.pathways.find((p) => p.id === pathwayId);
  if (!pathway) throw new NotFoundError('pathway');
  return composeProtocol(pack.manifest, pack.lifeThreatening, pathway);
}
