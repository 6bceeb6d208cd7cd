import { fileURLToPath } from 'node:url';
import { londonTime, type DowntimePackData, type KeyContact, type PackCase } from './pack-data.ts';
import { loadPdfKit } from '../pdf-kit.ts';

/**
 * Draws the downtime pack as a PDF (A4 landscape): the caseload tables, key contacts, then blank
 * call and triage forms to print several of. Tables are laid out by hand (pdfkit's own table is far
 * too slow for a few hundred rows), repeating their header on every page.
 */

/** Shipped with the code (DejaVu Sans, free licence beside it): a PDF draws the same on every machine. */
export const FONT_DIR = fileURLToPath(new URL('../../assets/fonts/', import.meta.url));
const REGULAR = `${FONT_DIR}DejaVuSans.ttf`;
const BOLD = `${FONT_DIR}DejaVuSans-Bold.ttf`;

export const SAMPLE_TRIAGE_NOTICE = 'Sample content for demonstration — not clinically validated';

const MARGIN = 28;
const FONT_SIZE = 8;
const PAD = 3;

interface Column {
  title: string;
  width: number;
  value(c: PackCase, nowMs: number): string;
}

function timeLeft(c: PackCase, nowMs: number): string {
  if (c.deadlineMs === null) return '—';
  const minutes = Math.round((c.deadlineMs - nowMs) / 60_000);
  if (minutes < 0) return `BREACHED ${-minutes} min`;
  return minutes >= 120 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`;
}

const COLUMNS: Column[] = [
  // First, so paper notes can be matched back to the case in Holdfast (the case screen shows it too).
  // Wide enough for the widest reference (DDDD-DDDD) on one line.
  { title: 'Case ref', width: 60, value: (c) => c.reference },
  {
    title: 'Deadline (UK time)',
    width: 78,
    value: (c) => (c.deadlineMs === null ? '—' : londonTime(c.deadlineMs)),
  },
  { title: 'Left', width: 46, value: timeLeft },
  {
    title: 'Patient',
    width: 110,
    value: (c) =>
      `${c.patientName}${c.dateOfBirth ? `\nborn ${c.dateOfBirth}` : ''}` +
      `${c.deceasedAt ? `\nDIED ${c.deceasedAt.slice(0, 10)}` : ''}` +
      `${c.restricted ? '\nrestricted record: address and contacts withheld' : ''}`,
  },
  { title: 'NHS number', width: 66, value: (c) => (c.nhsNumber ? spacedNhs(c.nhsNumber) : 'not identified') },
  { title: 'Call-back number', width: 72, value: (c) => c.callbackNumber },
  {
    title: 'Disposition',
    width: 112,
    value: (c) => `${c.disposition ?? '—'}${c.sample ? ' *' : ''}`,
  },
  {
    title: 'Status / site',
    width: 76,
    value: (c) => `${c.status.replace(/_/g, ' ')}${holderLine(c)}\n${c.siteName}`,
  },
  {
    title: 'Special notes',
    width: 0, // the rest of the line
    value: (c) => (c.specialNotes.length ? c.specialNotes.join('\n') : '—'),
  },
];

/** A clinician holds a claimed case; a call in progress is with the adviser who took it. */
function holderLine(c: PackCase): string {
  if (!c.heldBy) return '';
  return c.status === 'claimed' || c.status === 'in_consultation'
    ? `\nheld by ${c.heldBy}`
    : `\nwith adviser ${c.heldBy}`;
}

function spacedNhs(n: string): string {
  return n.length === 10 ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}` : n;
}

export interface RenderOptions {
  /** Off only in tests, so that the text can be read straight out of the file. */
  compress?: boolean;
}

/**
 * Rows laid out between two breaks for other requests: a pack of a few hundred cases takes a second
 * or more to lay out (text measuring), and the node must go on answering everyone else meanwhile
 * (measured: a crew's position report waited up to 0.9 s behind a dispatcher's pack).
 */
const ROWS_BETWEEN_BREAKS = 20;
const letOthersIn = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function renderDowntimePack(
  data: DowntimePackData,
  options: RenderOptions = {},
): Promise<Buffer> {
  const PDFDocument = await loadPdfKit();
  const doc = new PDFDocument({
    size: 'A4',
    layout: 'landscape',
    margin: MARGIN,
    compress: options.compress ?? true,
    bufferPages: false,
    info: {
      Title: `Downtime pack — ${data.providerName}`,
      Author: 'Holdfast',
      CreationDate: new Date(data.generatedAtMs),
    },
  });
  doc.registerFont('regular', REGULAR);
  doc.registerFont('bold', BOLD);
  const chunks: Buffer[] = [];
  doc.on('data', (b: Buffer) => chunks.push(b));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const pageWidth = doc.page.width - 2 * MARGIN;
  const fixed = COLUMNS.reduce((s, c) => s + c.width, 0);
  const widths = COLUMNS.map((c) => (c.width === 0 ? pageWidth - fixed : c.width));
  const footer = `Generated ${londonTime(data.generatedAtMs)} by ${data.generatedBy} — CONFIDENTIAL: patient data. Keep secure; shred when no longer needed.`;

  const bottom = () => doc.page.height - MARGIN - 14;
  const stamp = () => {
    const y = doc.page.height - MARGIN - 8;
    doc.font('regular').fontSize(6.5).fillColor('#444');
    doc.text(footer, MARGIN, y, { width: pageWidth, lineBreak: false });
    doc.fillColor('black');
  };
  const newPage = () => {
    stamp();
    doc.addPage();
    doc.y = MARGIN;
  };

  // ---- title --------------------------------------------------------------------------------------
  doc.font('bold').fontSize(16).text(`Downtime pack — ${data.providerName}`, MARGIN, MARGIN);
  doc.font('regular').fontSize(9);
  doc.text(
    `Sites: ${data.sites.map((s) => s.name).join(', ') || '(none)'}   ·   Made ${londonTime(data.generatedAtMs)}   ·   Open cases as this node knew them then.`,
  );
  doc.text(
    'Use when Holdfast is unavailable: work the call-backs in deadline order, record every call on a paper form, and enter the forms into Holdfast when it returns.',
  );
  if (data.truncated)
    doc
      .font('bold')
      .text('More open cases than fit in one pack: the oldest are shown; ask for a pack per site.');
  doc.moveDown(0.6);

  // ---- tables -------------------------------------------------------------------------------------
  const table = async (title: string, rows: PackCase[]) => {
    if (doc.y + 60 > bottom()) newPage();
    doc.font('bold').fontSize(12).text(`${title} (${rows.length})`, MARGIN, doc.y);
    doc.moveDown(0.2);
    const header = () => {
      doc.font('bold').fontSize(FONT_SIZE);
      const h =
        Math.max(...COLUMNS.map((c, i) => doc.heightOfString(c.title, { width: widths[i]! - 2 * PAD }))) +
        2 * PAD;
      drawRow(
        COLUMNS.map((c) => c.title),
        h,
        '#e6e6e6',
      );
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
    if (rows.length === 0) {
      doc.font('regular').fontSize(9).text('None.', MARGIN, doc.y);
      doc.moveDown(0.8);
      return;
    }
    if (rows.some((r) => r.sample)) {
      doc.font('regular').fontSize(FONT_SIZE);
      doc.text(`* From the Holdfast sample protocols: ${SAMPLE_TRIAGE_NOTICE}.`, MARGIN, doc.y);
      doc.moveDown(0.2);
    }
    header();
    for (const [n, row] of rows.entries()) {
      if (n > 0 && n % ROWS_BETWEEN_BREAKS === 0) await letOthersIn();
      doc.font('regular').fontSize(FONT_SIZE);
      const cells = COLUMNS.map((c) => c.value(row, data.generatedAtMs));
      const h =
        Math.max(...cells.map((text, i) => doc.heightOfString(text, { width: widths[i]! - 2 * PAD }))) +
        2 * PAD;
      if (doc.y + h > bottom()) {
        newPage();
        header();
        doc.font('regular').fontSize(FONT_SIZE);
      }
      drawRow(cells, h);
    }
    doc.moveDown(0.8);
  };
  await table('Call-backs due, in deadline order', data.callbacks);
  await table(
    'Calls in progress with health advisers (no disposition confirmed yet), oldest first',
    data.withAdvisers,
  );
  await table('Other open cases, in deadline order', data.otherOpen);

  /** A titled list of one-line entries (the other modules' sections), "None." when empty. */
  const lines = async (title: string, rows: string[]) => {
    if (doc.y + 40 > bottom()) newPage();
    doc.font('bold').fontSize(12).text(`${title} (${rows.length})`, MARGIN, doc.y);
    doc.font('regular').fontSize(FONT_SIZE);
    if (rows.length === 0) doc.text('None.', MARGIN, doc.y);
    for (const [n, row] of rows.entries()) {
      if (n > 0 && n % ROWS_BETWEEN_BREAKS === 0) await letOthersIn();
      if (doc.y + doc.heightOfString(row, { width: pageWidth }) > bottom()) newPage();
      doc.text(row, MARGIN, doc.y, { width: pageWidth });
    }
    doc.moveDown(0.8);
  };

  // ---- home visits: cars, crews, visits in progress ------------------------------------------------
  if (data.dispatch) {
    await lines(
      'Cars and crews',
      data.dispatch.vehicles.map(
        (v) =>
          `${v.callSign} — ${v.status}; crew: ${v.crew}; ${v.position}${v.visit ? `; working visit ${v.visit}` : ''}`,
      ),
    );
    await lines(
      'Home visits in progress, in deadline order',
      data.dispatch.visits.map(
        (v) =>
          `${v.reference} — due ${londonTime(v.deadlineMs)} (${v.timing.replace('_', ' ')}); ${v.address}; ${v.reason}; car: ${v.car ?? 'none yet'}${v.accessInstructions ? `; access: ${v.accessInstructions}` : ''}`,
      ),
    );
  }

  // ---- treatment-centre appointments for the next hours ----------------------------------------------
  if (data.appointments) {
    const { fromMs, hours } = data.appointments;
    for (const centre of data.appointments.centres)
      await lines(
        `Appointments at ${centre.name} (${centre.address}; ${centre.phone}), ` +
          `${londonTime(fromMs - 3600_000)} to ${londonTime(fromMs + hours * 3600_000)}`,
        centre.appointments.map(
          (a) => `${a.startLocal} — ${a.patientName}; ${a.kind}; ${a.state}; case ${a.reference}`,
        ),
      );
  }

  // ---- contacts -----------------------------------------------------------------------------------
  if (doc.y + 120 > bottom()) newPage();
  doc.font('bold').fontSize(12).text('Key contacts', MARGIN, doc.y);
  doc.font('regular').fontSize(9);
  const contacts: KeyContact[] = data.contacts.length
    ? data.contacts
    : [
        'Service desk / supplier',
        'On-call manager',
        'Ambulance control (HCP line)',
        'Clinical lead on duty',
      ].map((name) => ({ name, phone: '______________________' }));
  for (const c of contacts) doc.text(`${c.name}: ${c.phone}${c.note ? `  (${c.note})` : ''}`, MARGIN, doc.y);

  // ---- blank forms --------------------------------------------------------------------------------
  callForm(doc, pageWidth, stamp);
  triageForm(doc, pageWidth, stamp);
  stamp();
  doc.end();
  return done;
}

function formLines(doc: PDFKit.PDFDocument, pageWidth: number, labels: string[], lineGap = 26): void {
  doc.font('regular').fontSize(9);
  const labelWidth = 220;
  for (const label of labels) {
    const y = doc.y;
    const labelHeight = doc.heightOfString(label, { width: labelWidth });
    doc.text(label, MARGIN, y, { width: labelWidth });
    // The writing line sits under the label's last line, so a long label never runs into the next.
    const lineY = y + labelHeight + 1;
    doc
      .moveTo(MARGIN + labelWidth + 5, lineY)
      .lineTo(MARGIN + pageWidth, lineY)
      .lineWidth(0.4)
      .stroke('#888');
    doc.y = Math.max(y + lineGap, lineY + 12);
  }
}

function callForm(doc: PDFKit.PDFDocument, pageWidth: number, stamp: () => void): void {
  stamp();
  doc.addPage();
  doc.font('bold').fontSize(14).text('Call record (paper) — one per call', MARGIN, MARGIN);
  doc
    .font('regular')
    .fontSize(9)
    .text(
      "Enter into Holdfast when it returns; write the case ref it gives here (or the pack's, for a case in it): ____________",
    );
  doc.moveDown(0.5);
  formLines(doc, pageWidth, [
    'Date and time of call',
    'Call handler',
    'Caller name',
    'Relationship to patient',
    'Call-back number',
    'Patient name',
    'Date of birth',
    'NHS number',
    'Where the patient is now',
    'Registered GP practice',
    'Special notes (end of life, DNACPR, safeguarding, care plan)',
    'Presenting complaint',
    'Disposition (Dx code, timeframe)',
    'Action taken (999 category, referral, passed to clinician at)',
    'Clinician call-back: time, clinician, outcome',
  ]);
}

function triageForm(doc: PDFKit.PDFDocument, pageWidth: number, stamp: () => void): void {
  stamp();
  doc.addPage();
  doc.font('bold').fontSize(14).text('Triage record (paper)', MARGIN, MARGIN);
  doc.font('regular').fontSize(9);
  doc.text(
    'Ask the life-threatening questions first, then those of the presenting complaint, from the protocol your service uses. Never use the sample protocols shipped with Holdfast for real patients:',
    MARGIN,
    doc.y,
    { width: pageWidth },
  );
  doc
    .font('bold')
    .text(`Holdfast sample protocols: ${SAMPLE_TRIAGE_NOTICE}.`, MARGIN, doc.y, { width: pageWidth });
  doc.moveDown(0.5);
  formLines(doc, pageWidth, ['Case / call record', 'Protocol and pathway used', 'Started at, by']);
  doc.font('bold').fontSize(9).text('Question', MARGIN, doc.y, { continued: false });
  const top = doc.y;
  const rows = 12;
  for (let i = 0; i <= rows; i++) {
    doc
      .moveTo(MARGIN, top + i * 20)
      .lineTo(MARGIN + pageWidth, top + i * 20)
      .lineWidth(0.4)
      .stroke('#888');
  }
  doc
    .moveTo(MARGIN + pageWidth * 0.65, top)
    .lineTo(MARGIN + pageWidth * 0.65, top + rows * 20)
    .stroke('#888');
  doc.text('Answer', MARGIN + pageWidth * 0.65 + 4, top - 12);
  doc.y = top + rows * 20 + 10;
  formLines(doc, pageWidth, ['Disposition (Dx code, skill set, timeframe)', 'Care advice given']);
}
