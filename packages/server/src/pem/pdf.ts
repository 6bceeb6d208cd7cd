import { formatLondonDateTime } from '@holdfast/core/queue/priority';
import { FONT_DIR, SAMPLE_TRIAGE_NOTICE } from '../downtime/pdf.ts';
import { pemTypeLabel, type PemDocument } from './document.ts';
import { loadPdfKit } from '../pdf-kit.ts';

/**
 * The Post Event Message as a PDF, for a practice that cannot take the structured message (and to
 * print): the same sections as the FHIR document, with the patient and the practice named at the
 * top. Fonts are the downtime pack's shipped DejaVu Sans, so it draws the same on every machine.
 */
const MARGIN = 48;

export async function renderPemPdf(doc: PemDocument, options: { compress?: boolean } = {}): Promise<Buffer> {
  const PDFDocument = await loadPdfKit();
  const pdf = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    compress: options.compress ?? true,
    info: {
      Title: `Post Event Message — ${doc.practice.odsCode}`,
      Author: 'Holdfast',
      CreationDate: new Date(doc.closedAtMs),
    },
  });
  pdf.registerFont('regular', `${FONT_DIR}DejaVuSans.ttf`);
  pdf.registerFont('bold', `${FONT_DIR}DejaVuSans-Bold.ttf`);
  const chunks: Buffer[] = [];
  pdf.on('data', (b: Buffer) => chunks.push(b));
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });

  const heading = (text: string, size = 12) => pdf.font('bold').fontSize(size).text(text).moveDown(0.3);
  const line = (text: string) => pdf.font('regular').fontSize(10).text(text);

  heading(`Post Event Message — ${pemTypeLabel(doc.content)}`, 16);
  line(`From: ${doc.providerName} (urgent care)`);
  line(`To: ${doc.practice.name ?? 'Registered practice'} (ODS ${doc.practice.odsCode})`);
  line(`Due by: ${formatLondonDateTime(doc.content.dueAtMs)} (UK time)`);
  line(`Case ended: ${formatLondonDateTime(doc.closedAtMs)} (UK time)`);
  pdf.moveDown(0.6);
  heading('Patient');
  line(`Name: ${doc.patient.name}`);
  line(`Born: ${doc.patient.dateOfBirth}`);
  line(`NHS number: ${doc.patient.nhsNumber ?? 'not recorded'}`);
  if (doc.sample) {
    pdf.moveDown(0.4);
    pdf.font('bold').fontSize(10).fillColor('#a00').text(SAMPLE_TRIAGE_NOTICE).fillColor('black');
  }
  for (const section of doc.sections) {
    pdf.moveDown(0.6);
    heading(section.title);
    for (const text of section.lines) line(text);
  }
  pdf.moveDown(1);
  pdf
    .font('regular')
    .fontSize(7)
    .fillColor('#444')
    .text('CONFIDENTIAL: patient data. For the registered practice only.');
  pdf.end();
  return done;
}
