import { NOT_CLINICALLY_VALIDATED_FORMULARY, type Formulary } from '@holdfast/core';
import PDFDocument from 'pdfkit';
import { FONT_DIR } from '../downtime/pdf.ts';
import type { PatientRecordView } from '../patients/service.ts';
import type { PrescriptionIssued } from './events.ts';

/** A paper prescription (FP10-like) for a message that could not go. (h18-web's thin stand-in.) */
export function renderPrescriptionPdf(
  p: PrescriptionIssued,
  patient: PatientRecordView,
  formulary: Formulary,
): Promise<Buffer> {
  const pdf = new PDFDocument({ size: 'A5', margin: 36, info: { Title: `Prescription ${p.shortFormId}` } });
  pdf.registerFont('regular', `${FONT_DIR}DejaVuSans.ttf`);
  pdf.registerFont('bold', `${FONT_DIR}DejaVuSans-Bold.ttf`);
  const chunks: Buffer[] = [];
  pdf.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve) => pdf.on('end', () => resolve(Buffer.concat(chunks))));
  pdf.font('bold').fontSize(14).text('Prescription (paper route)');
  pdf.font('regular').fontSize(10).text(`Prescription id ${p.shortFormId}`);
  pdf.moveDown();
  pdf.text(`Patient: ${patient.givenName ?? ''} ${patient.familyName}`.trim());
  if (patient.nhsNumber) pdf.text(`NHS number: ${patient.nhsNumber}`);
  if (patient.dateOfBirth) pdf.text(`Date of birth: ${patient.dateOfBirth}`);
  pdf.moveDown();
  pdf.font('bold').text(`${p.medicine.name} (${p.medicine.form}, ${p.medicine.route})`);
  pdf.font('regular').text(`Directions: ${p.draft.directions}`);
  pdf.text(
    `Quantity: ${p.draft.quantity}${p.draft.quantityWords ? ` (${p.draft.quantityWords})` : ''} · ${p.draft.durationDays} days`,
  );
  pdf.text(`Pharmacy: ${p.pharmacy.name} (${p.pharmacy.odsCode})`);
  pdf.moveDown();
  if (formulary.notClinicallyValidated) pdf.text(NOT_CLINICALLY_VALIDATED_FORMULARY);
  pdf.end();
  return done;
}
