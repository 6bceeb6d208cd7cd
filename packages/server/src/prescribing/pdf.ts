import { formatLondonDateTime } from '@holdfast/core/queue/priority';
import { NOT_CLINICALLY_VALIDATED_FORMULARY, type Formulary } from '@holdfast/core';
import { FONT_DIR } from '../downtime/pdf.ts';
import type { PatientRecordView } from '../patients/service.ts';
import type { PrescriptionIssued } from './events.ts';
import { loadPdfKit } from '../pdf-kit.ts';

/**
 * The paper prescription (FP10-like) for when the message cannot go: the prescription id with its
 * check character, the patient, the medicine with dose, quantity (in words and figures for a
 * controlled drug) and directions, the pharmacy, the prescriber, and the formulary's
 * "not clinically validated" line when it is sample content.
 */
export async function renderPrescriptionPdf(input: {
  issued: PrescriptionIssued;
  patient: PatientRecordView;
  prescriber: string;
  printedAtMs: number;
  formulary: Formulary;
}): Promise<Buffer> {
  const p = input.issued;
  const PDFDocument = await loadPdfKit();
  const pdf = new PDFDocument({
    size: 'A5',
    margin: 36,
    info: {
      Title: `Prescription ${p.shortFormId}`,
      Author: 'Holdfast',
      CreationDate: new Date(input.printedAtMs),
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
  const heading = (text: string, size = 11) => pdf.font('bold').fontSize(size).text(text).moveDown(0.2);
  const line = (text: string) => pdf.font('regular').fontSize(9).text(text);
  heading('Prescription — urgent care (paper route)', 14);
  line(`Prescription id: ${p.shortFormId}`);
  line(
    `Issued: ${formatLondonDateTime(p.atMs)} (UK time); printed ${formatLondonDateTime(input.printedAtMs)}`,
  );
  pdf.moveDown(0.5);
  heading('Patient');
  line(`Name: ${[input.patient.givenName, input.patient.familyName].filter(Boolean).join(' ')}`);
  line(`Born: ${input.patient.dateOfBirth ?? 'not recorded'}`);
  line(`NHS number: ${input.patient.nhsNumber ?? 'not recorded'}`);
  if (input.patient.address) line(`Address: ${input.patient.address}`);
  pdf.moveDown(0.5);
  heading('Medicine');
  line(`${p.medicine.name} (${p.medicine.form}, ${p.medicine.strength}, ${p.medicine.route})`);
  if (p.medicine.schedule) line(`Controlled drug, schedule ${p.medicine.schedule}`);
  line(
    `Dose: ${p.draft.doseMg} mg, ${p.draft.frequencyPerDay} times a day, for ${p.draft.durationDays} days`,
  );
  line(
    `Quantity: ${p.draft.quantity} ${p.medicine.unit}${p.draft.quantityWords ? ` (${p.draft.quantityWords})` : ''}`,
  );
  line(`Directions: ${p.draft.directions}`);
  pdf.moveDown(0.5);
  heading('Pharmacy');
  line(`${p.pharmacy.name}${p.pharmacy.odsCode ? ` (ODS ${p.pharmacy.odsCode})` : ''}`);
  pdf.moveDown(0.5);
  heading('Prescriber');
  line(input.prescriber);
  line('Signature: ______________________________');
  pdf.moveDown(0.8);
  pdf
    .font('bold')
    .fontSize(8)
    .fillColor('#a00')
    .text(
      input.formulary.notClinicallyValidated
        ? NOT_CLINICALLY_VALIDATED_FORMULARY
        : `Formulary: ${input.formulary.title} (${input.formulary.version})`,
    )
    .fillColor('black');
  line('Not sent electronically: this paper prescription is the only one. CONFIDENTIAL: patient data.');
  pdf.end();
  return done;
}
