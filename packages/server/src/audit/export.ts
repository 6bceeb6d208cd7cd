import { FONT_DIR } from '../downtime/pdf.ts';
import type { TrailRow } from './trail.ts';
import { loadPdfKit } from '../pdf-kit.ts';

const london = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
  timeZoneName: 'short',
});

/** "2026-11-29 09:00:00 GMT": UK time with its zone, so the autumn's repeated hour is unambiguous. */
export function ukTime(iso: string): string {
  const p = Object.fromEntries(london.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
}

function spacedNhs(n: string | null): string {
  return n && n.length === 10 ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}` : (n ?? '');
}

interface ExportColumn {
  title: string;
  /** Width in the PDF (points); 0 takes what is left. */
  width: number;
  value(r: TrailRow): string;
}

const COLUMNS: ExportColumn[] = [
  { title: 'When (UK time)', width: 100, value: (r) => ukTime(r.at) },
  {
    title: 'Times',
    width: 34,
    value: (r) => String(r.count),
  },
  { title: 'Event', width: 140, value: (r) => r.event },
  {
    title: 'User',
    width: 110,
    value: (r) => (r.user ? (r.user.name ?? 'unknown user') : '—'),
  },
  { title: 'Roles', width: 80, value: (r) => r.roles.join(', ') },
  {
    title: 'Record',
    width: 70,
    value: (r) => (r.record ? (r.record.kind === 'case' ? `case ${r.record.reference}` : 'patient') : ''),
  },
  { title: 'Patient', width: 100, value: (r) => r.record?.patientName ?? '' },
  { title: 'NHS number', width: 66, value: (r) => spacedNhs(r.record?.nhsNumber ?? null) },
  {
    title: 'Break-glass reason',
    width: 0,
    value: (r) => (r.breakGlass ? (r.reason ?? 'break-glass') : ''),
  },
];

/**
 * A CSV cell: quoted when it holds a comma, quote or line break; a leading = + - @ is prefixed with
 * an apostrophe so a spreadsheet never runs a name as a formula.
 */
function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The filtered trail as CSV (RFC 4180, CRLF), with the first and last time of grouped reads. */
export function trailCsv(rows: readonly TrailRow[]): string {
  const header = [
    ...COLUMNS.map((c) => c.title),
    'First of the group (UK time)',
    'Ledger node',
    'Ledger seq',
  ];
  const lines = [header.map(csvCell).join(',')];
  for (const r of rows)
    lines.push(
      [...COLUMNS.map((c) => c.value(r)), ukTime(r.firstAt), r.ledger.node, String(r.ledger.seq)]
        .map(csvCell)
        .join(','),
    );
  return `${lines.join('\r\n')}\r\n`;
}

const MARGIN = 28;
const FONT_SIZE = 7.5;
const PAD = 3;

/** The filtered trail as a PDF (A4 landscape), its table laid out by hand with the header on every page. */
export async function trailPdf(
  rows: readonly TrailRow[],
  meta: { title: string; filters: string; generatedAt: string; generatedBy: string },
  options: { compress?: boolean } = {},
): Promise<Buffer> {
  const PDFDocument = await loadPdfKit();
  const doc = new PDFDocument({
    size: 'A4',
    layout: 'landscape',
    margin: MARGIN,
    compress: options.compress ?? true,
    info: { Title: meta.title, Author: 'Holdfast', CreationDate: new Date(meta.generatedAt) },
  });
  doc.registerFont('regular', `${FONT_DIR}DejaVuSans.ttf`);
  doc.registerFont('bold', `${FONT_DIR}DejaVuSans-Bold.ttf`);
  const chunks: Buffer[] = [];
  doc.on('data', (b: Buffer) => chunks.push(b));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const pageWidth = doc.page.width - 2 * MARGIN;
  const fixed = COLUMNS.reduce((s, c) => s + c.width, 0);
  const widths = COLUMNS.map((c) => (c.width === 0 ? pageWidth - fixed : c.width));
  const footer = `Exported ${ukTime(meta.generatedAt)} by ${meta.generatedBy}. CONFIDENTIAL: names and NHS numbers. This export is itself recorded in the audit trail.`;
  const bottom = () => doc.page.height - MARGIN - 14;
  const stamp = () => {
    doc.font('regular').fontSize(6.5).fillColor('#444');
    doc.text(footer, MARGIN, doc.page.height - MARGIN - 8, { width: pageWidth, lineBreak: false });
    doc.fillColor('black');
  };
  const drawRow = (cells: string[], h: number, fill?: string) => {
    const y = doc.y;
    let x = MARGIN;
    if (fill) doc.rect(MARGIN, y, pageWidth, h).fill(fill).fillColor('black');
    doc.rect(MARGIN, y, pageWidth, h).lineWidth(0.4).stroke('#888');
    for (let i = 0; i < cells.length; i++) {
      doc.text(cells[i]!, x + PAD, y + PAD, { width: widths[i]! - 2 * PAD });
      x += widths[i]!;
    }
    doc.x = MARGIN;
    doc.y = y + h;
  };
  const heightOf = (cells: string[]) =>
    Math.max(...cells.map((t, i) => doc.heightOfString(t, { width: widths[i]! - 2 * PAD }))) + 2 * PAD;
  const header = () => {
    doc.font('bold').fontSize(FONT_SIZE);
    const titles = COLUMNS.map((c) => c.title);
    drawRow(titles, heightOf(titles), '#e6e6e6');
    doc.font('regular').fontSize(FONT_SIZE);
  };

  doc.font('bold').fontSize(14).text(meta.title, MARGIN, MARGIN);
  doc.font('regular').fontSize(9).text(`Filters: ${meta.filters}`);
  doc.text(
    `${rows.length} rows, newest first. "Times" counts repeated reads of one record by one user within a minute.`,
  );
  doc.moveDown(0.5);
  header();
  for (const r of rows) {
    const cells = COLUMNS.map((c) => c.value(r));
    const h = heightOf(cells);
    if (doc.y + h > bottom()) {
      stamp();
      doc.addPage();
      doc.y = MARGIN;
      header();
    }
    drawRow(cells, h);
  }
  if (rows.length === 0) doc.text('No events match these filters.', MARGIN, doc.y + 4);
  stamp();
  doc.end();
  return done;
}
